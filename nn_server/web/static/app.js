// nn-server's web page: pick a network, classify a drawing, a file or a sample, train it
// and watch the training, and choose which version is served. Everything it shows comes
// from the JSON API (docs/api.md); it keeps no state the server does not have.

import { ApiError, dataUrlOf, get, post } from "./api.js";
import { renderChart } from "./chart.js";
import { Pad } from "./pad.js";

const TOP_K = 5;
const POLL_TRAINING_MS = 500;
const POLL_IDLE_MS = 4000;
const DRAW_SETTLE_MS = 150; // classify once the pen has been up this long

const $ = (id) => document.getElementById(id);

// Resolved with the first network's description: what is drawn or dropped while the page
// is still loading waits for it instead of failing.
let firstShown;
const firstNetwork = new Promise((resolve) => { firstShown = resolve; });

const page = {
  chosen: null, // the name of the network chosen last
  network: null, // the /<net>/about answer of the network shown
  classifying: 0, // the latest classification asked for; older answers are dropped
  poll: null, // the status poll's timer
  polling: 0, // the latest status request; an older one schedules nothing
  training: false, // what the last status said, to notice a training ending
  activeSample: null,
  settle: null, // the timer that classifies a drawing once the pen rests
  fileUrl: null, // the object URL showing an uploaded file, revoked when replaced
  served: undefined, // the served version the last status named
};

// -- small helpers -----------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function toast(message, kind = "info") {
  const note = el("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status",
    text: message });
  $("toasts").append(note);
  setTimeout(() => note.remove(), kind === "error" ? 7000 : 4000);
}

function percent(fraction, digits = 1) {
  return `${(100 * fraction).toFixed(digits)} %`;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

function short(version) {
  return el("code", { text: version ?? "–", title: version ?? "" });
}

function base() {
  return `/${page.network.name}`;
}

// -- networks ----------------------------------------------------------------------------

async function start() {
  let list;
  try {
    list = await get("/list_nn");
  } catch (error) {
    toast(`Cannot list the networks: ${error.message}`, "error");
    return;
  }
  const names = list.networks.map((n) => n.name);
  $("networks").replaceChildren(...list.networks.map((n) => el("button", {
    type: "button", "data-network": n.name, text: n.title, onclick: () => choose(n.name),
  })));
  const wanted = decodeURIComponent(location.hash.slice(1));
  await choose(names.includes(wanted) ? wanted : names[0]);
  window.addEventListener("hashchange", () => {
    const name = decodeURIComponent(location.hash.slice(1));
    if (names.includes(name)) choose(name);
  });
}

async function choose(name) {
  if (name === page.chosen) return; // already shown, or on its way
  page.chosen = name;
  for (const button of $("networks").querySelectorAll("button")) {
    button.setAttribute("aria-current", String(button.dataset.network === name));
  }
  if (location.hash.slice(1) !== name) history.replaceState(null, "", `#${name}`);
  clearTimeout(page.poll);
  if (page.network) page.classifying += 1; // answers for the previous network are dropped
  page.training = false;
  page.served = undefined;
  let about;
  try {
    about = await get(`/${name}/about`);
  } catch (error) {
    toast(`Cannot describe ${name}: ${error.message}`, "error");
    if (page.chosen === name) page.chosen = null; // let a click try again
    return;
  }
  if (page.chosen !== name) return; // another network was chosen meanwhile
  const switching = page.network !== null;
  page.network = about;
  firstShown(about);
  document.title = `${about.title} · nn-server`;
  $("net-title").textContent = about.title;
  $("net-about").textContent = about.text;
  showFacts(null);
  if (switching) { // the previous network's input and answer go; a first one has none
    resetInput();
    showNoAnswer("Nothing classified yet");
  }
  renderChart($("chart"), { history: [], live: null, epochs: 0 });
  await Promise.all([loadSamples(), loadVersions(), pollStatus()]);
}

function showFacts(served) {
  const about = page.network;
  const [channels, height, width] = about.input_shape;
  const facts = [
    ["data set", about.dataset],
    ["classes", String(about.labels.length)],
    ["input", `${width}×${height}${channels === 1 ? " grey" : ""}`],
  ];
  if (about.shipped_weights?.accuracy) facts.push(["shipped", `${about.shipped_weights.accuracy} %`]);
  if (served) facts.push(["serving", served]);
  $("net-facts").replaceChildren(...facts.map(([key, value]) =>
    el("li", {}, `${key} `, el("b", { text: value }))));
}

// -- classifying -------------------------------------------------------------------------

const pad = new Pad($("pad"), {
  onStart: () => {
    if (!$("picture").hidden) resetInput(); // drawing again replaces the picture
    $("pad-hint").hidden = true;
    clearTimeout(page.settle);
  },
  onStroke: () => {
    clearTimeout(page.settle);
    page.settle = setTimeout(() => {
      if (!pad.blank) classify(pad.toDataURL());
    }, DRAW_SETTLE_MS);
  },
});

function resetInput() {
  pad.clear();
  $("pad-hint").hidden = false;
  $("picture").hidden = true;
  $("picture-img").removeAttribute("src");
  forgetFile();
  markSample(null);
}

function forgetFile() {
  if (page.fileUrl) URL.revokeObjectURL(page.fileUrl);
  page.fileUrl = null;
}

function showPicture(src, name) {
  if (src !== page.fileUrl) forgetFile();
  const picture = $("picture");
  const img = $("picture-img");
  picture.classList.remove("unshown");
  img.hidden = false;
  img.onerror = () => { // e.g. a TIFF: the server reads it, the browser does not show it
    img.hidden = true;
    picture.classList.add("unshown");
  };
  img.src = src;
  $("picture-name").textContent = name;
  $("pad-hint").hidden = true;
  picture.hidden = false;
}

async function classifyFile(file) {
  if (!file) return;
  markSample(null);
  forgetFile();
  page.fileUrl = URL.createObjectURL(file);
  showPicture(page.fileUrl, file.name);
  try {
    await classify(await dataUrlOf(file));
  } catch (error) {
    showNoAnswer(error.message, true);
  }
}

const ONE_COLUMN = window.matchMedia("(max-width: 1040px)");

async function classifySample(sample, button) {
  markSample(button);
  showPicture(sample.preview, sample.name);
  // One column: the samples are below the answer, so bring the answer into view.
  if (ONE_COLUMN.matches) document.querySelector(".classify").scrollIntoView({ behavior: "smooth" });
  try {
    const response = await fetch(sample.url);
    if (!response.ok) throw new ApiError(`the sample could not be loaded (${response.status})`);
    await classify(await dataUrlOf(await response.blob()));
  } catch (error) {
    showNoAnswer(error.message, true);
  }
}

async function classify(image) {
  const ticket = ++page.classifying;
  const network = page.network ?? await firstNetwork;
  const started = performance.now();
  $("result").classList.add("busy");
  try {
    const answer = await post(`/${network.name}/classify`, {
      image, top_k: Math.min(TOP_K, network.labels.length),
    });
    if (ticket === page.classifying) showAnswer(answer, performance.now() - started);
  } catch (error) {
    if (ticket === page.classifying) showNoAnswer(error.message, true);
  } finally {
    if (ticket === page.classifying) $("result").classList.remove("busy");
  }
}

function showAnswer(answer, elapsedMs) {
  $("answer").textContent = answer.label;
  const confidence = $("confidence");
  confidence.classList.remove("error");
  confidence.textContent = `${percent(answer.confidence)} sure`;
  $("bars").replaceChildren(...answer.top.map((entry, i) => {
    const fill = el("div", { class: "bar-fill" });
    const row = el("li", { class: i === 0 ? "bar top" : "bar" },
      el("span", { class: "bar-label", text: entry.label }),
      el("div", { class: "bar-track" }, fill),
      el("span", { class: "bar-value", text: percent(entry.probability) }));
    requestAnimationFrame(() => { fill.style.width = `${100 * entry.probability}%`; });
    return row;
  }));
  $("result-meta").replaceChildren("weights ", short(answer.weights_version),
    ` · ${Math.round(elapsedMs)} ms`);
}

function showNoAnswer(message, isError = false) {
  $("result").classList.remove("busy");
  $("answer").textContent = "";
  const confidence = $("confidence");
  confidence.textContent = isError ? `No answer: ${message}` : message;
  confidence.classList.toggle("error", isError);
  $("bars").replaceChildren();
  $("result-meta").replaceChildren();
}

$("clear").addEventListener("click", () => {
  page.classifying += 1;
  resetInput();
  showNoAnswer("Nothing classified yet");
});

$("upload").addEventListener("change", (event) => {
  const [file] = event.target.files;
  classifyFile(file);
  event.target.value = ""; // choosing the same file again is a new choice
});

const dropZone = $("drop-zone");
for (const type of ["dragenter", "dragover"]) {
  dropZone.addEventListener(type, (event) => {
    if (![...event.dataTransfer.types].includes("Files")) return;
    event.preventDefault();
    dropZone.classList.add("dropping");
  });
}
for (const type of ["dragleave", "drop"]) {
  dropZone.addEventListener(type, () => dropZone.classList.remove("dropping"));
}
dropZone.addEventListener("drop", (event) => {
  const [file] = event.dataTransfer.files;
  if (!file) return;
  event.preventDefault();
  classifyFile(file);
});

// -- samples -----------------------------------------------------------------------------

async function loadSamples() {
  const network = page.network;
  let samples = [];
  try {
    ({ samples } = await get(`${base()}/samples`));
  } catch (error) {
    toast(`Cannot list the samples: ${error.message}`, "error");
  }
  if (network !== page.network) return;
  $("samples-empty").hidden = samples.length > 0;
  $("samples").replaceChildren(...samples.map((sample) => {
    const button = el("button", {
      type: "button", class: "sample", "data-sample": sample.name,
      title: `${sample.name}${sample.label === null ? "" : ` (${sample.label})`}`,
    },
    el("img", { src: sample.preview, alt: `Sample ${sample.name}`, loading: "lazy" }),
    el("span", {}, el("b", { text: sample.label ?? "?" }), ` ${sample.name.replace(/^\d+_/, "")}`));
    button.addEventListener("click", () => classifySample(sample, button));
    return el("li", {}, button);
  }));
}

function markSample(button) {
  page.activeSample?.classList.remove("active");
  page.activeSample = button;
  button?.classList.add("active");
}

// -- training ----------------------------------------------------------------------------

$("train-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!page.network) return; // still loading
  const query = new URLSearchParams({ promote: $("promote").value });
  const epochs = $("epochs").value.trim();
  if (epochs) query.set("epochs", epochs);
  const path = `${base()}/train?${query}`;
  $("train-start").disabled = true;
  try {
    try {
      await post(path);
    } catch (error) {
      // POST is the proper method; a server from before it was added answers 405, and
      // takes the original GET.
      if (!(error instanceof ApiError && error.status === 405)) throw error;
      await get(path);
    }
    toast(`Training of ${page.network.title} started`);
  } catch (error) {
    toast(`Cannot start the training: ${error.message}`, "error");
  }
  await pollStatus();
});

async function pollStatus() {
  clearTimeout(page.poll);
  const ticket = ++page.polling; // a click, the timer and a returning tab may overlap
  const network = page.network;
  let status = null;
  try {
    status = await get(`/${network.name}/train/status`);
  } catch (error) {
    if (network === page.network) $("train-outcome").textContent = `Status unavailable: ${error.message}`;
  }
  // The user switched networks meanwhile, or a later poll is under way.
  if (network !== page.network || ticket !== page.polling) return;
  if (status) showStatus(status);
  const training = status?.state === "training";
  if (page.training && !training) finished(status);
  page.training = training;
  if (!document.hidden || training) {
    page.poll = setTimeout(pollStatus, training ? POLL_TRAINING_MS : POLL_IDLE_MS);
  }
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && page.network) pollStatus();
});

function showStatus(status) {
  const training = status.state === "training";
  const badge = $("train-state");
  badge.dataset.state = status.state;
  badge.textContent = status.state;
  $("train-start").disabled = training;
  $("progress").hidden = !training;
  const progress = status.progress;
  const last = status.history.at(-1);
  if (training) {
    const fraction = progress?.fraction ?? 0;
    $("progress-stage").textContent = status.stage ?? "training";
    $("progress-percent").textContent = percent(fraction, 0);
    $("progress-fill").style.width = `${100 * fraction}%`;
  }
  const shown = progress ?? last;
  $("stat-epoch").textContent = progress ? `${progress.epoch} / ${progress.epochs}`
    : last ? String(last.epoch) : "–";
  $("stat-loss").textContent = shown ? shown.loss.toFixed(3) : "–";
  $("stat-accuracy").textContent = shown ? percent(shown.accuracy) : "–";
  $("stat-elapsed").textContent = progress ? duration(progress.elapsed_s) : "–";
  $("stat-eta").textContent = progress ? duration(progress.eta_s) : "–";
  renderChart($("chart"), {
    history: status.history, live: training ? progress : null,
    epochs: progress?.epochs ?? status.history.length,
  });
  // Another client (or a rollback) changed what is served: the table follows.
  if (page.served !== undefined && status.weights_version !== page.served) loadVersions();
  page.served = status.weights_version;
  showFacts(status.weights_version);
  showOutcome(status);
}

function showOutcome(status) {
  const outcome = $("train-outcome");
  outcome.className = "outcome";
  if (status.state === "training") {
    outcome.textContent = status.started ? `Started ${status.started}` : "";
  } else if (status.state === "failed") {
    outcome.classList.add("bad");
    outcome.textContent = `The last training failed: ${status.error ?? "no reason given"}`;
  } else if (status.version && status.accuracy) {
    const served = status.promoted
      ? "served now" : `kept, not served${status.reason ? ` (${status.reason})` : ""}`;
    if (status.promoted) outcome.classList.add("good");
    outcome.replaceChildren(`Last training (${status.datetime}): `, short(status.version),
      `, ${status.accuracy} % on the test set, ${served}.`);
  } else {
    outcome.textContent = "";
  }
}

function finished(status) {
  if (status?.state === "failed") toast(`Training failed: ${status.error}`, "error");
  else if (status) toast(`Training finished: ${status.accuracy} % on the test set`);
  loadVersions();
}

// -- versions ----------------------------------------------------------------------------

async function loadVersions() {
  const network = page.network;
  let answer;
  try {
    answer = await get(`${base()}/versions`);
  } catch (error) {
    toast(`Cannot list the versions: ${error.message}`, "error");
    return;
  }
  if (network !== page.network) return;
  showFacts(answer.served);
  $("versions").replaceChildren(...answer.versions.map((v) => {
    const tags = [];
    if (v.served) tags.push(el("span", { class: "tag served", text: "served" }));
    else {
      if (v.version === answer.previous) tags.push(el("span", { class: "tag previous", text: "rollback" }), " ");
      tags.push(el("button", {
        type: "button", class: "button small", "data-serve": v.version, text: "Serve",
        onclick: (event) => serve(v.version, event.currentTarget),
      }));
    }
    const [day, time] = (v.datetime ?? v.added).split(" ");
    const epochs = v.epochs ? ` · ${v.epochs} epoch${v.epochs === 1 ? "" : "s"}` : "";
    return el("tr", { class: v.served ? "served" : "", "data-version": v.version },
      el("td", {}, short(v.version), el("small", { text: `${v.source}${epochs}` })),
      el("td", { class: "num" }, ...accuracies(v)),
      el("td", { class: "when", title: `added ${v.added}` }, day ?? "", el("small", { text: time ?? "" })),
      el("td", {}, ...tags));
  }));
}

// The accuracy in each precision measured, the one the workers run first and marked.
function accuracies(v) {
  const measured = Object.entries(v.accuracies ?? {});
  if (!measured.length) return [v.accuracy ? `${v.accuracy} %` : "–"];
  measured.sort(([a], [b]) => (b === v.precision) - (a === v.precision));
  return measured.map(([precision, accuracy]) => el(precision === v.precision ? "span" : "small", {
    class: `precision${precision === v.precision ? " runs" : ""}`, "data-precision": precision,
    title: precision === v.precision ? `served in ${precision}` : `measured in ${precision}, not served so`,
    text: `${accuracy} % ${precision}`,
  }));
}

async function serve(version, button) {
  button.disabled = true;
  try {
    await post(`${base()}/versions/${encodeURIComponent(version)}/serve`);
    toast(`Serving ${version}: every worker switches within a second`);
  } catch (error) {
    toast(`Cannot serve ${version}: ${error.message}`, "error");
  }
  await loadVersions();
}

start();
