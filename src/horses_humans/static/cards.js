// The upload UI shared by the server's page and the browser build's page: choose or drop photos, one card per
// photo with its label, a probability bar and per-file errors. Each page passes its own predict(file), which
// resolves to {label, probabilities: {class: p}, gradcam?: dataURL, error?: text}.
"use strict";

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;  // textContent only: file names and errors are never parsed as HTML
  return e;
}

function showResult(card, result) {
  const body = card.querySelector(".body");
  body.replaceChildren();
  if (result.error) { body.append(el("div", "error", result.error)); return; }
  const p = result.probabilities[result.label];
  body.append(el("div", "label", result.label));
  const bar = el("div", "bar"), fill = el("div");
  fill.style.width = `${(100 * p).toFixed(1)}%`;
  bar.append(fill);
  body.append(bar, el("div", "prob", `probability ${(100 * p).toFixed(1)}% · ` +
    Object.entries(result.probabilities).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(", ")));
  if (result.gradcam) {
    const overlay = el("img"); overlay.src = result.gradcam; overlay.alt = "Grad-CAM overlay";
    card.querySelector(".pics").append(overlay);
  }
}

function newCard(file) {
  const card = el("div", "card");
  const pics = el("div", "pics"), img = el("img");
  img.alt = file.name; img.src = URL.createObjectURL(file);
  img.onerror = () => { img.style.visibility = "hidden"; };
  pics.append(img);
  card.append(pics, el("div", "name", file.name), el("div", "body", "predicting…"));
  document.getElementById("results").append(card);
  return card;
}

function startUploads(predict, parallel = 4) {
  const input = document.getElementById("files"), drop = document.getElementById("drop");
  async function one(file) {
    const card = newCard(file);
    let result;
    try { result = await predict(file); } catch (err) { result = { error: `${file.name}: ${err.message || err}` }; }
    showResult(card, result);
  }
  async function all(files) {
    const queue = Array.from(files);
    await Promise.all(Array.from({ length: parallel }, async () => { while (queue.length) await one(queue.shift()); }));
  }
  input.addEventListener("change", () => { all(input.files); input.value = ""; });
  drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", e => { e.preventDefault(); drop.classList.remove("over"); all(e.dataTransfer.files); });
  document.getElementById("clear").addEventListener("click", () => document.getElementById("results").replaceChildren());
}
