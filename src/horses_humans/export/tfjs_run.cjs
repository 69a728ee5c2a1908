// The TF.js export's parity check: its graph model run in Node by @tensorflow/tfjs (the CPU backend, as in a
// browser without WebGL), reading nothing but model.json and its weight shards.
//   node tfjs_run.cjs TFJS_PACKAGE MODEL_DIR IMAGES N SIZE OUT [TIMED_RUNS]
// IMAGES: N x SIZE x SIZE x 3 uint8 RGB pixels, raw; OUT gets the model's answers (N, C) as raw float32, and
// OUT.ms the median milliseconds of TIMED_RUNS one-image predictions (after warm-up), when asked.
"use strict";
const fs = require("fs");
const path = require("path");

const [tfjsPackage, modelDir, imagesPath, n, size, outPath, timedRuns] = process.argv.slice(2);
const tf = require(tfjsPackage);
const BATCH = 16; // images per predict: activations of a whole validation set at 224 px would take gigabytes

// model.json and its shards as one in-memory artefact: @tensorflow/tfjs alone (no tfjs-node) cannot read files
function loadArtifacts(dir) {
  const json = JSON.parse(fs.readFileSync(path.join(dir, "model.json"), "utf8"));
  const groups = json.weightsManifest;
  const shards = groups.flatMap((group) => group.paths.map((p) => fs.readFileSync(path.join(dir, p))));
  const weightData = new Uint8Array(Buffer.concat(shards)).buffer;
  return { ...json, weightSpecs: groups.flatMap((group) => group.weights), weightData };
}

function medianMs(model, image, runs) {
  for (let i = 0; i < 3; i++) tf.dispose(model.predict(image));
  const times = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    tf.tidy(() => model.predict(image).dataSync());
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  const mid = Math.floor(runs / 2);
  return runs % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
}

async function main() {
  await tf.setBackend("cpu");
  const model = await tf.loadGraphModel(tf.io.fromMemory(loadArtifacts(modelDir)));
  const pixels = new Uint8Array(fs.readFileSync(imagesPath));
  const [count, side] = [Number(n), Number(size)];
  const images = tf.tensor4d(pixels, [count, side, side, 3], "int32"); // TF.js has no uint8 tensors
  const answers = [];
  for (let start = 0; start < count; start += BATCH) {
    const batch = images.slice([start, 0, 0, 0], [Math.min(BATCH, count - start), side, side, 3]);
    answers.push(...tf.tidy(() => model.predict(batch).dataSync()));
    batch.dispose();
  }
  fs.writeFileSync(outPath, Buffer.from(new Float32Array(answers).buffer));
  if (Number(timedRuns) > 0) {
    const one = images.slice([0, 0, 0, 0], [1, side, side, 3]);
    fs.writeFileSync(outPath + ".ms", String(medianMs(model, one, Number(timedRuns))));
  }
}

main().catch((error) => {
  process.stderr.write(`tfjs_run: ${error.message}\n`);
  process.exit(1);
});
