"""--resize squash|crop|pad in the one decode (images.fit_square): what each mode keeps of a non-square image, the
JPEG draft each mode may take, and the pixel cache keeping the modes apart."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from horses_humans.config import RESIZE_MODES, HorsesHumansError, TrainConfig
from horses_humans.data.images import array_pixels, draft_target, load_pixels, open_image
from horses_humans.data.layouts import FileList
from horses_humans.data.pixels import load_files

RED, BLUE, GREEN, WHITE = (255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 255, 255)


def edged(width: int = 301, height: int = 180, band: int = 20, seed: int = 0) -> np.ndarray:
    """(height, width, 3) uint8: grey noise inside a red left band, a blue right one, a green top and a white bottom
    (the side bands over the top and bottom ones): every mode keeps or drops a different edge."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(60, 200, (height, width, 3)).astype(np.uint8)
    pixels[:band], pixels[-band:] = GREEN, WHITE
    pixels[:, :band], pixels[:, -band:] = RED, BLUE
    return pixels


def save_png(pixels: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def test_squash_keeps_every_edge_crop_drops_the_sides_pad_keeps_them_on_black(tmp_path):
    photo = save_png(edged(), tmp_path / "wide.png")
    squash, crop, pad = (load_pixels(photo, 64, resize=mode) for mode in RESIZE_MODES)
    assert (squash[32, 0] == RED).all() and (squash[32, -1] == BLUE).all() and (squash[0, 32] == GREEN).all()
    # crop: the centred 180 x 180 square starts at column 60, past the 20-column red band
    assert not (crop[32, 0] == RED).all() and not (crop[32, -1] == BLUE).all() and (crop[0, 32] == GREEN).all()
    # pad: 301 x 180 -> 64 x 38 (rounded), centred with 13 black rows above; both side bands are still there
    assert (pad[:13] == 0).all() and (pad[-13:] == 0).all() and (pad[32, 0] == RED).all()
    assert (pad[13, 32] == GREEN).all() and (pad[-14, 32] == WHITE).all()
    assert not np.array_equal(squash, crop) and not np.array_equal(squash, pad) and not np.array_equal(crop, pad)


def test_crop_and_pad_at_the_short_and_long_side_are_exact_slices(tmp_path):
    pixels = edged(300, 180)
    photo = save_png(pixels, tmp_path / "wide.png")
    np.testing.assert_array_equal(load_pixels(photo, 180, resize="crop"), pixels[:, 60:240])  # Keras' center crop
    padded = load_pixels(photo, 300, resize="pad")
    np.testing.assert_array_equal(padded[60:240], pixels)
    assert (padded[:60] == 0).all() and (padded[240:] == 0).all()


def test_tall_images_crop_and_pad_along_the_other_axis(tmp_path):
    pixels = np.ascontiguousarray(edged(300, 181).transpose(1, 0, 2))  # 181 wide, 300 tall
    photo = save_png(pixels, tmp_path / "tall.png")
    crop = load_pixels(photo, 181, resize="crop")
    np.testing.assert_array_equal(crop, pixels[(300 - 181) // 2 : (300 - 181) // 2 + 181])  # odd pixel: below
    pad = load_pixels(photo, 300, resize="pad")
    np.testing.assert_array_equal(pad[:, 59:240], pixels)
    assert (pad[:, :59] == 0).all() and (pad[:, 240:] == 0).all()


@pytest.mark.parametrize("mode", RESIZE_MODES)
@pytest.mark.parametrize("image_mode", ["RGB", "L", "P", "RGBA"])
def test_every_pillow_mode_is_brought_to_the_square_alike(tmp_path, mode, image_mode):
    """Grey and RGB images are resized before the RGB conversion, the rest after it: the same pixels either way."""
    photo = tmp_path / f"wide-{image_mode}.png"
    Image.fromarray(edged()).convert(image_mode).save(photo)
    expected = array_pixels(np.asarray(Image.open(photo).convert("RGB")), 48, resize=mode)
    np.testing.assert_array_equal(load_pixels(photo, 48, resize=mode), expected)


def test_an_array_is_brought_to_the_square_as_its_file(tmp_path):
    pixels = edged()
    photo = save_png(pixels, tmp_path / "wide.png")
    for mode in RESIZE_MODES:
        np.testing.assert_array_equal(array_pixels(pixels, 40, resize=mode), load_pixels(photo, 40, resize=mode))


def test_the_jpeg_draft_keeps_the_square_at_least_twice_the_size(tmp_path):
    photo = tmp_path / "wide.jpg"
    Image.fromarray(np.asarray(Image.fromarray(edged()).resize((4000, 1000)))).save(photo, quality=90)
    squash, crop, pad = (open_image(photo, draft_for=100, resize=mode).size for mode in RESIZE_MODES)
    assert min(squash) >= 200 and min(crop) >= 200  # each axis squashed / the crop's square: 2x or more
    assert max(pad) >= 200 and max(pad) < max(crop)  # pad spans the square with the long side alone: decodes less
    assert draft_target((4000, 1000), 100, "pad") == (200, 50)
    draft, whole = load_pixels(photo, 100, resize="pad"), load_pixels(photo, 100, resize="pad", draft=False)
    assert np.abs(draft.astype(int) - whole).mean() < 2.0  # the smaller decode changes the pixels little


def test_an_unknown_mode_is_refused_by_the_config_and_the_decode(tmp_path):
    with pytest.raises(HorsesHumansError, match="--resize 'stretch': choose one of squash, crop, pad"):
        TrainConfig(resize="stretch")
    with pytest.raises(ValueError, match="resize 'stretch': choose one of squash, crop, pad"):
        load_pixels(save_png(edged(), tmp_path / "wide.png"), 32, resize="stretch")


def test_the_pixel_cache_never_hands_a_crop_run_squashed_pixels(tmp_path):
    root = tmp_path / "data"
    save_png(edged(), root / "horses" / "wide.png")
    save_png(edged(seed=1), root / "humans" / "wide.png")
    found = FileList("validation", root, ["horses/wide.png", "humans/wide.png"], [0, 1])
    squash = load_files(found, ["horses", "humans"], 32, tmp_path / "cache", lambda s: None)
    crop = load_files(found, ["horses", "humans"], 32, tmp_path / "cache", lambda s: None, "crop")
    again = load_files(found, ["horses", "humans"], 32, tmp_path / "cache", lambda s: None)
    assert squash.key != crop.key and squash.key == again.key
    np.testing.assert_array_equal(crop.x[0], load_pixels(root / "horses" / "wide.png", 32, resize="crop"))
    np.testing.assert_array_equal(again.x, squash.x)
    assert len(list((tmp_path / "cache" / "pixels").glob("validation-32-crop-*.npy"))) == 1
