// The upload UI shared by the server's page and the browser build's page: choose or drop photos, one card per
// photo with its label and the most probable classes (up to TOP_CLASSES, most probable first), each with a
// probability bar, and per-file errors. Each page passes its own predict(file), which resolves to
// {label, probabilities: {class: p} for every class, unsure_reason?: text, unsure_score?: 0-1, gradcam?: dataURL,
// error?: text}. A label "unsure" gets the card class "unsure" and its reason under the label.
"use strict";

const TOP_CLASSES = 5;

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
  body.append(el("div", "label", result.label));
  if (result.unsure_reason) {  // none of the classes: say why, and how sure the rule is (0-1)
    card.classList.add("unsure");
    const score = result.unsure_score != null ? ` (score ${result.unsure_score.toFixed(2)})` : "";
    body.append(el("div", "reason", `${result.unsure_reason}${score}`));
  }
  body.append(classBars(result.probabilities, result.label));
  if (result.gradcam) {
    const overlay = el("img"); overlay.src = result.gradcam; overlay.alt = "Grad-CAM overlay";
    card.querySelector(".pics").append(overlay);
  }
}

// The top classes, most probable first (ties keep the model's class order), one row each: name, bar, percentage.
function topClasses(probabilities, n = TOP_CLASSES) {
  return Object.entries(probabilities).map(([name, p], i) => ({ name, p, i }))
    .sort((a, b) => b.p - a.p || a.i - b.i).slice(0, n);
}

function classBars(probabilities, label) {
  const list = el("div", "classes"), all = Object.keys(probabilities).length;
  for (const { name, p } of topClasses(probabilities)) {
    const row = el("div", name === label ? "class top" : "class"), bar = el("div", "bar"), fill = el("div");
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    bar.append(fill);
    row.append(el("span", "class-name", name), bar, el("span", "prob", `${(100 * p).toFixed(1)}%`));
    list.append(row);
  }
  if (all > TOP_CLASSES) list.append(el("div", "more", `top ${TOP_CLASSES} of ${all} classes`));
  return list;
}

// The page's heading for a model's classes: the data set's own question, else the user's classes.
function showHeading(classNames) {
  const own = classNames.join() !== "horses,humans";
  const text = !own ? "Horse or human?" : classNames.length <= 3 ? `${classNames.join(" or ")}?` : `Which of ${classNames.length} classes?`;
  document.querySelector("h1").textContent = text;
  document.title = document.title.replace("Horse or human?", text);
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
