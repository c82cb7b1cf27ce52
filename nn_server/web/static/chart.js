// Loss and accuracy per epoch, drawn as inline SVG (no chart library, nothing to load).
// Finished epochs are solid; the epoch in progress is a dashed segment to a hollow point
// at its fraction, so the chart moves while the first epoch runs.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 640;
const HEIGHT = 260;
const MARGIN = { top: 14, right: 58, bottom: 38, left: 58 };
const ROWS = 4;

function element(name, attributes = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The smallest round step (1, 2 or 5 × 10^n) that is at least `value`. */
function niceStep(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5]) {
    if (step * power >= value - 1e-12) return step * power;
  }
  return 10 * power;
}

function linePath(points) {
  return points.map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join("");
}

/**
 * history: [{epoch, loss, accuracy}] (finished epochs); live: the status's progress or
 * null; epochs: how many the training runs (the x axis spans them).
 */
export function renderChart(svg, { history, live, epochs }) {
  svg.replaceChildren();
  const done = history.map((h) => ({ x: h.epoch, loss: h.loss, accuracy: h.accuracy }));
  let current = null;
  if (live && live.batches && live.batch < live.batches) {
    current = {
      x: live.epoch - 1 + live.batch / live.batches, loss: live.loss, accuracy: live.accuracy,
    };
  }
  const all = current ? [...done, current] : done;
  const xMax = Math.max(1, epochs || 0, ...all.map((p) => Math.ceil(p.x)));
  const lossStep = niceStep(Math.max(0.1, ...all.map((p) => p.loss)) / ROWS);
  const lossMax = lossStep * ROWS;
  const lossDigits = Math.max(0, -Math.floor(Math.log10(lossStep) + 1e-9));
  const left = MARGIN.left;
  const right = WIDTH - MARGIN.right;
  const top = MARGIN.top;
  const bottom = HEIGHT - MARGIN.bottom;
  const x = (value) => left + (value / xMax) * (right - left);
  const yLoss = (value) => bottom - (value / lossMax) * (bottom - top);
  const yAccuracy = (value) => bottom - value * (bottom - top);

  for (let row = 0; row <= ROWS; row += 1) {
    const y = bottom - (row / ROWS) * (bottom - top);
    svg.append(element("line", { class: "grid-line", x1: left, x2: right, y1: y, y2: y }));
    // Each axis in its series' colour: the left one is the loss, the right one accuracy.
    svg.append(element("text", {
      class: "axis-text loss-axis", x: left - 8, y: y + 4, "text-anchor": "end",
    }, (lossStep * row).toFixed(lossDigits)));
    svg.append(element("text", {
      class: "axis-text accuracy-axis", x: right + 8, y: y + 4, "text-anchor": "start",
    }, `${(100 * row) / ROWS} %`));
  }
  const step = Math.max(1, Math.ceil(xMax / 10));
  for (let epoch = 0; epoch <= xMax; epoch += step) {
    svg.append(element("text", {
      class: "axis-text", x: x(epoch), y: bottom + 18, "text-anchor": "middle",
    }, String(epoch)));
  }
  svg.append(element("text", {
    class: "axis-text", x: (left + right) / 2, y: HEIGHT - 2, "text-anchor": "middle",
  }, "epoch"));

  if (!all.length) {
    svg.append(element("text", {
      class: "placeholder", x: (left + right) / 2, y: (top + bottom) / 2, "text-anchor": "middle",
    }, "Loss and accuracy appear here as a training runs"));
    return;
  }

  for (const [series, y] of [["loss", yLoss], ["accuracy", yAccuracy]]) {
    const points = done.map((p) => ({ x: x(p.x), y: y(p[series]) }));
    if (points.length > 1) {
      svg.append(element("path", { class: `line ${series}`, d: linePath(points) }));
    }
    for (const p of points) {
      svg.append(element("circle", { class: series, cx: p.x, cy: p.y, r: 4, stroke: "none" }));
    }
    if (current) {
      const end = { x: x(current.x), y: y(current[series]) };
      if (points.length) {
        svg.append(element("path", { class: `live ${series}`, d: linePath([points.at(-1), end]) }));
      }
      svg.append(element("circle", { class: `live ${series}`, cx: end.x, cy: end.y, r: 5 }));
    }
  }
}
