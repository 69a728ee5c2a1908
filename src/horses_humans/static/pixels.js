// A photo -> the model's input, exactly as the Python side makes it (images.load_pixels): EXIF orientation applied,
// transparency composited on white, brought to the square as the run's resize says (images.fit_square: squash, crop
// or pad), with Pillow's bilinear resize (a triangle filter widened when shrinking, 22-bit fixed-point weights,
// horizontal pass then vertical, each rounded to 8 bits), so the page and the CLI agree.
"use strict";

const PRECISION_BITS = 22;  // Pillow's Resample.c: 32 - 8 - 2

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter: per output index, first input index and integer weights.
function resampleCoefficients(inSize, outSize) {
  const scale = inSize / outSize, filterScale = Math.max(scale, 1), support = filterScale;
  const taps = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize);
    const w = [];
    for (let x = xmin; x < xmax; x++) w.push(Math.max(0, 1 - Math.abs((x - center + 0.5) / filterScale)));
    const total = w.reduce((a, b) => a + b, 0);
    taps.push({ start: xmin, weights: w.map(v => Math.trunc(0.5 + (total ? v / total : 0) * (1 << PRECISION_BITS))) });
  }
  return taps;
}

// One separable pass over an RGB uint8 array: along x (horizontal) or along y, to `outSize` samples.
function resamplePass(src, width, height, outSize, horizontal) {
  const taps = resampleCoefficients(horizontal ? width : height, outSize);
  const outW = horizontal ? outSize : width, outH = horizontal ? height : outSize;
  const out = new Uint8ClampedArray(outW * outH * 3);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const tap = taps[horizontal ? x : y];
      for (let c = 0; c < 3; c++) {
        let sum = 1 << (PRECISION_BITS - 1);
        for (let k = 0; k < tap.weights.length; k++) {
          const i = horizontal ? (y * width + tap.start + k) : ((tap.start + k) * width + x);
          sum += src[i * 3 + c] * tap.weights[k];
        }
        out[(y * outW + x) * 3 + c] = Math.floor(sum / (1 << PRECISION_BITS));  // the clamped array clips to 0-255
      }
    }
  }
  return out;
}

// RGB uint8 (width x height) -> outWidth x outHeight (default: size x size), as PIL's Image.resize(..., BILINEAR).
function resizeBilinear(rgb, width, height, size, outHeight = size) {
  let out = rgb;
  if (width !== size) out = resamplePass(out, width, height, size, true);
  if (height !== outHeight) out = resamplePass(out, size, height, outHeight, false);
  return out;
}

// The rows and columns of an RGB uint8 image (width wide) from (left, top), width x height of them.
function cropRGB(rgb, width, left, top, cropWidth, cropHeight) {
  const out = new Uint8ClampedArray(cropWidth * cropHeight * 3);
  for (let y = 0; y < cropHeight; y++) {
    const start = ((top + y) * width + left) * 3;
    out.set(rgb.subarray(start, start + cropWidth * 3), y * cropWidth * 3);
  }
  return out;
}

// RGB uint8 (width x height) -> size x size by the run's resize, as images.fit_square: squash stretches the whole
// image; crop takes the centred square (the odd pixel right and down); pad resizes the long side to size (rounded half
// up, in integers as in Python) and centres it on black.
function fitSquare(rgb, width, height, size, resize = "squash") {
  if (width === height || resize === "squash") return resizeBilinear(rgb, width, height, size);
  if (resize === "crop") {
    const side = Math.min(width, height), left = (width - side) >> 1, top = (height - side) >> 1;
    return resizeBilinear(cropRGB(rgb, width, left, top, side, side), side, side, size);
  }
  if (resize !== "pad") throw new Error(`unknown resize ${resize}: squash, crop or pad`);
  const longest = Math.max(width, height), fit = (side) => Math.max(1, Math.floor((side * size + Math.floor(longest / 2)) / longest));
  const fw = fit(width), fh = fit(height), left = (size - fw) >> 1, top = (size - fh) >> 1;
  const fitted = resizeBilinear(rgb, width, height, fw, fh), out = new Uint8ClampedArray(size * size * 3);  // black
  for (let y = 0; y < fh; y++) out.set(fitted.subarray(y * fw * 3, (y + 1) * fw * 3), ((top + y) * size + left) * 3);
  return out;
}

// A File or Blob -> Float32Array (size * size * 3), raw 0-255 RGB, brought to the square by `resize` (labels.json's
// resize: squash, crop or pad); rejects when the browser cannot decode it.
async function imagePixels(file, size, resize = "squash") {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image", colorSpaceConversion: "none", premultiplyAlpha: "none" });
  } catch (err) {
    throw new Error("not an image the browser can decode");  // the card adds the file name
  }
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width; canvas.height = bitmap.height;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width, canvas.height);  // transparency on white, as in training
  ctx.drawImage(bitmap, 0, 0);
  const rgba = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const rgb = new Uint8ClampedArray(canvas.width * canvas.height * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) { rgb[j] = rgba[i]; rgb[j + 1] = rgba[i + 1]; rgb[j + 2] = rgba[i + 2]; }
  return Float32Array.from(fitSquare(rgb, canvas.width, canvas.height, size, resize));
}
