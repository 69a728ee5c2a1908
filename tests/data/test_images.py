"""images.py: every colour mode becomes RGB uint8 (size, size, 3); bad inputs are ImageErrors naming the file."""

import io
import re

import numpy as np
import pytest
from PIL import Image

from horses_humans.data.images import ImageError, ImageTooLarge, load_pixels, open_image, to_rgb

WHITE = (255, 255, 255)


def saved(tmp_path, im: Image.Image, name: str, **save_args):
    """Save `im` under tmp_path and return the path."""
    path = tmp_path / name
    im.save(path, **save_args)
    return path


def palette_image(transparent: bool) -> Image.Image:
    """A 6x6 P image of palette entry 0 (red); entry 0 is the transparent one when asked."""
    im = Image.new("P", (6, 6), 0)
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    if transparent:
        im.info["transparency"] = 0
    return im


def assert_uniform(pixels: np.ndarray, size: int, colour, tolerance: int = 0) -> None:
    """pixels is uint8 (size, size, 3) and every pixel is `colour` (within tolerance)."""
    assert pixels.dtype == np.uint8
    assert pixels.shape == (size, size, 3)
    assert np.abs(pixels.astype(int) - np.array(colour)).max() <= tolerance, pixels[0, 0]


# (file name, image, expected colour); files are 6x6 and decoded at 4x4, so resizing is exercised too.
MODES = {
    "RGB": ("rgb.png", lambda: Image.new("RGB", (6, 6), (10, 20, 30)), (10, 20, 30)),
    "RGBA-opaque": ("rgba1.png", lambda: Image.new("RGBA", (6, 6), (10, 20, 30, 255)), (10, 20, 30)),
    "RGBA-transparent": ("rgba0.png", lambda: Image.new("RGBA", (6, 6), (200, 0, 0, 0)), WHITE),
    "LA-transparent": ("la0.png", lambda: Image.new("LA", (6, 6), (0, 0)), WHITE),
    "LA-opaque": ("la1.png", lambda: Image.new("LA", (6, 6), (40, 255)), (40, 40, 40)),
    "L": ("l.png", lambda: Image.new("L", (6, 6), 77), (77, 77, 77)),
    "P": ("p.png", lambda: palette_image(transparent=False), (255, 0, 0)),
    "P-transparent": ("pt.png", lambda: palette_image(transparent=True), WHITE),
    "1-white": ("one1.png", lambda: Image.new("1", (6, 6), 1), WHITE),
    "1-black": ("one0.png", lambda: Image.new("1", (6, 6), 0), (0, 0, 0)),
    "CMYK": ("cmyk.tif", lambda: Image.new("CMYK", (6, 6), (0, 255, 0, 0)), (255, 0, 255)),
    "CMYK-jpeg": ("cmyk.jpg", lambda: Image.new("CMYK", (6, 6), (0, 0, 0, 0)), WHITE),
    "F-unit": ("f1.tif", lambda: Image.new("F", (6, 6), 1.0), WHITE),
    "F-0-255": ("f255.tif", lambda: Image.new("F", (6, 6), 200.0), (200, 200, 200)),
}


@pytest.mark.parametrize("case", list(MODES))
def test_every_colour_mode_decodes_to_rgb(tmp_path, case):
    name, build, colour = MODES[case]
    path = saved(tmp_path, build(), name)
    # JPEG is lossy; every other format round-trips exactly
    assert_uniform(load_pixels(path, 4), 4, colour, tolerance=3 if name.endswith(".jpg") else 0)


def test_mode_survives_the_round_trip_through_a_file(tmp_path):
    # guards the table above: each file really is in the mode it claims to test
    for case, (name, build, _) in MODES.items():
        with Image.open(saved(tmp_path, build(), name)) as im:
            assert im.mode == case.split("-")[0], case


def test_half_transparent_pixel_is_blended_with_white():
    im = Image.new("RGBA", (2, 2), (0, 0, 0, 128))
    out = np.asarray(to_rgb(im))
    assert to_rgb(im).mode == "RGB"
    assert np.all(np.abs(out.astype(int) - 127) <= 1)


@pytest.mark.parametrize("mode, colour", [("L", 7), ("RGB", (1, 2, 3))])
def test_colour_key_transparency_is_composited_on_white(tmp_path, mode, colour):
    # a PNG tRNS chunk makes one exact colour transparent in L and RGB images
    im = Image.new(mode, (4, 4), colour)
    im.putpixel((0, 0), 100 if mode == "L" else (9, 9, 9))
    pixels = load_pixels(saved(tmp_path, im, "key.png", transparency=colour), 4)
    assert_uniform(pixels[1:, 1:], 3, WHITE)
    assert tuple(pixels[0, 0]) == ((100,) * 3 if mode == "L" else (9, 9, 9))


@pytest.mark.parametrize("value, expected", [(0, 0), (771, 3), (32896, 128), (65535, 255)])
def test_16_bit_grayscale_png_is_scaled_to_8_bits(tmp_path, value, expected):
    path = saved(tmp_path, Image.fromarray(np.full((4, 4), value, np.uint16)), "g16.png")
    with Image.open(path) as im:
        assert im.mode == "I;16"
    assert_uniform(load_pixels(path, 4), 4, (expected,) * 3)


def test_32_bit_integer_image_is_clipped_not_wrapped():
    im = Image.fromarray(np.array([[0, 5000], [30000, 70000]], np.int32))
    assert im.mode == "I"
    out = np.asarray(to_rgb(im))[..., 0]
    assert out.dtype == np.uint8
    assert out.tolist() == [[0, 19], [116, 255]]  # / 257, and 70000 clipped to 255


def test_jpeg_exif_orientation_is_applied(tmp_path):
    # 40 wide x 20 tall: left half red, right half blue; Orientation=6 means "rotate 90 degrees clockwise"
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)
    pixels[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = saved(tmp_path, Image.fromarray(pixels), "rotated.jpg", exif=exif.tobytes(), quality=95)

    im = open_image(path)
    assert im.size == (20, 40)  # now tall
    out = np.asarray(load_pixels(path, 20)).astype(int)
    assert np.abs(out[2, 10] - (255, 0, 0)).max() < 40  # the left (red) half is now on top
    assert np.abs(out[-3, 10] - (0, 0, 255)).max() < 40


def test_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(path) as im:
        assert im.n_frames == 3
    assert_uniform(load_pixels(path, 5), 5, (255, 0, 0))


def test_png_extension_holding_a_jpeg_is_sniffed(tmp_path):
    path = saved(tmp_path, Image.new("RGB", (12, 12), (0, 128, 0)), "really-a-jpeg.png", format="JPEG")
    assert path.read_bytes()[:3] == b"\xff\xd8\xff"
    assert_uniform(load_pixels(path, 8), 8, (0, 128, 0), tolerance=3)


def test_bytes_are_decoded_like_files():
    buf = io.BytesIO()
    Image.new("RGB", (10, 10), (1, 2, 3)).save(buf, "PNG")
    assert_uniform(load_pixels(buf.getvalue(), 7), 7, (1, 2, 3))


def test_non_square_image_is_resized_to_a_square(tmp_path, make_image):
    path = make_image(tmp_path / "wide.png", size=(40, 9))
    assert load_pixels(path, 13).shape == (13, 13, 3)


def test_truncated_png_is_an_image_error(tmp_path, make_image):
    path = make_image(tmp_path / "full.png", size=(40, 40))
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ImageError, match="full.png.*truncated"):
        load_pixels(path, 8)


@pytest.mark.parametrize("content", [b"", b"hello, not an image\n", b"\x89PNG\r\n\x1a\n garbage"])
def test_non_images_are_image_errors_naming_the_file(tmp_path, content):
    path = tmp_path / "fake.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=re.escape(str(path))):
        load_pixels(path, 8)


def test_bytes_error_uses_the_given_name():
    with pytest.raises(ImageError, match="^upload.jpg: "):
        load_pixels(b"not an image", 8, name="upload.jpg")
    with pytest.raises(ImageError, match="<upload>"):
        load_pixels(b"not an image", 8)


@pytest.mark.parametrize("side", [40, 50])  # 1600 px: Pillow's warning zone; 2500 px: over 2x, its error zone
def test_decompression_bomb_is_refused(tmp_path, monkeypatch, side):
    path = saved(tmp_path, Image.new("RGB", (side, side)), "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageError, match="bomb.png.*decompression bomb"):
        load_pixels(path, 8)


def test_image_under_the_pixel_limit_still_decodes(tmp_path, monkeypatch):
    path = saved(tmp_path, Image.new("RGB", (30, 30), (5, 5, 5)), "fine.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    assert_uniform(load_pixels(path, 8), 8, (5, 5, 5))


def test_missing_file_is_an_image_error(tmp_path):
    path = tmp_path / "nowhere.png"
    with pytest.raises(ImageError, match=re.escape(f"{path}: no such file")):
        load_pixels(path, 8)


def test_directory_is_an_image_error(tmp_path):
    with pytest.raises(ImageError, match=re.escape(f"{tmp_path}: is a directory")):
        load_pixels(tmp_path, 8)


def test_image_error_is_a_value_error():
    assert issubclass(ImageError, ValueError)


# ---------------------------------------------------------------- JPEG decoded at a reduced DCT scale (draft)


def photo_like(width: int, height: int) -> np.ndarray:
    """uint8 (height, width, 3): smooth gradients plus mid-frequency stripes and a bright square at the top left, so
    a wrong rotation, a missing draft or a poor one shows in the pixels."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    stripes = 40 * np.sin(x / 9.0) * np.cos(y / 13.0)
    pixels = np.stack([255 * x / width, 255 * y / height, 128 + stripes], axis=-1)
    pixels[: height // 4, : width // 4] = (250, 250, 30)
    return pixels.clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory):
    """A 1600x1200 quality-90 JPEG of photo_like pixels."""
    return saved(tmp_path_factory.mktemp("jpeg"), Image.fromarray(photo_like(1600, 1200)), "big.jpg", quality=90)


# 2x the target, then the largest of 1/1, 1/2, 1/4, 1/8 that keeps both sides at least that: 1600x1200 ->
@pytest.mark.parametrize(
    "size, decoded",
    [(75, (200, 150)), (100, (400, 300)), (150, (400, 300)), (300, (800, 600)), (600, (1600, 1200))],
)
def test_jpeg_is_decoded_at_the_smallest_scale_at_least_twice_the_target(big_jpeg, size, decoded):
    assert open_image(big_jpeg, draft_for=size).size == decoded
    assert open_image(big_jpeg).size == (1600, 1200)  # no target: the whole image


@pytest.mark.parametrize("size", [75, 150, 224])
def test_draft_decode_is_close_to_the_full_decode(big_jpeg, size):
    draft = load_pixels(big_jpeg, size).astype(int)
    full = load_pixels(big_jpeg, size, draft=False).astype(int)
    assert draft.shape == full.shape == (size, size, 3)
    assert np.abs(draft - full).mean() < 1.0
    assert np.abs(draft - full).max() < 40


def test_exif_rotation_is_applied_to_a_drafted_jpeg(tmp_path):
    # stored 1600 wide x 800 tall; Orientation=6: shown rotated 90 degrees clockwise, 800 wide x 1600 tall
    original = photo_like(1600, 800)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = saved(tmp_path, Image.fromarray(original), "phone.jpg", exif=exif.tobytes(), quality=95)
    assert open_image(path, draft_for=100).size == (200, 400)  # drafted to 1/4, then turned upright

    upright = Image.fromarray(original).transpose(Image.Transpose.ROTATE_270)  # ROTATE_270: 90 degrees clockwise
    expected = np.asarray(upright.resize((100, 100), Image.Resampling.BILINEAR)).astype(int)
    out = load_pixels(path, 100).astype(int)
    assert np.abs(out - expected).mean() < 2.0
    unrotated = np.asarray(Image.fromarray(original).resize((100, 100), Image.Resampling.BILINEAR)).astype(int)
    assert np.abs(out - unrotated).mean() > 20  # the comparison above can tell a rotation from none


def test_phone_mpo_is_drafted_like_a_jpeg(tmp_path):
    # phones write MPO: a JPEG with extra frames (a preview, a depth map) that Pillow opens as format "MPO"
    first = Image.fromarray(photo_like(1600, 1200))
    path = saved(tmp_path, first, "phone.jpg", format="MPO", save_all=True, append_images=[first.resize((160, 120))])
    assert open_image(path).format == "MPO"
    assert open_image(path, draft_for=100).size == (400, 300)
    assert np.abs(load_pixels(path, 100).astype(int) - load_pixels(path, 100, draft=False)).mean() < 1.0


@pytest.mark.parametrize("name, save_args", [("big.png", {}), ("big.webp", {"lossless": True}), ("big.tif", {})])
def test_other_formats_are_not_drafted(tmp_path, name, save_args):
    path = saved(tmp_path, Image.fromarray(photo_like(800, 600)), name, **save_args)
    assert open_image(path, draft_for=50).size == (800, 600)
    assert np.array_equal(load_pixels(path, 50), load_pixels(path, 50, draft=False))


def test_small_jpeg_is_decoded_whole(tmp_path):
    # 300x200 at 150: no DCT scale keeps 2x the target, so the pixels are those of the full decode
    path = saved(tmp_path, Image.fromarray(photo_like(300, 200)), "small.jpg", quality=90)
    assert open_image(path, draft_for=150).size == (300, 200)
    assert np.array_equal(load_pixels(path, 150), load_pixels(path, 150, draft=False))


def test_pixel_limit_counts_the_jpeg_header_not_the_draft(big_jpeg):
    # the draft would decode 400x300 = 120,000 pixels; the limit is on the file's 1600x1200
    with pytest.raises(ImageTooLarge, match=r"big.jpg: 1600x1200 is 1,920,000 pixels, over the limit of 1,000,000"):
        load_pixels(big_jpeg, 100, max_pixels=1_000_000)
    assert load_pixels(big_jpeg, 100, max_pixels=2_000_000).shape == (100, 100, 3)
