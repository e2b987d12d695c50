(function () {
"use strict";
const spec = JSON.parse(document.getElementById("skvae-data").textContent);

// Texts from the data (the title, class and feature names) reach the page
// only as text nodes: whatever they hold is shown, never parsed as HTML.
function dataText(text) {
  const span = document.createElement("span");
  span.className = "data-text";
  span.textContent = text;
  return span;
}
document.getElementById("title").textContent = spec.title;

function f32(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}
function prepare(ops) {
  if (!ops) return null;
  return ops.map((op) => {
    const out = Object.assign({}, op);
    if (op.w) { out.w = f32(op.w); out.b = f32(op.b); }
    return out;
  });
}
const decoderOps = prepare(spec.decoder);
const headOps = prepare(spec.head);
const n = spec.n_components;

// Run a list of operations on one latent point. With round32, activations
// are stored as float32 after each layer (accumulating in float64), as
// torch's float32 layers; without, everything stays float64.
function run(ops, z, round32) {
  const Arr = round32 ? Float32Array : Float64Array;
  let x = Arr.from(z);
  for (const op of ops) {
    switch (op.op) {
      case "linear": {
        const y = new Arr(op.out), w = op.w, b = op.b, nin = op.in;
        for (let o = 0; o < op.out; o++) {
          let s = b[o];
          const row = o * nin;
          for (let i = 0; i < nin; i++) s += w[row + i] * x[i];
          y[o] = s;
        }
        x = y; break;
      }
      case "relu": for (let i = 0; i < x.length; i++) if (x[i] < 0) x[i] = 0; break;
      case "leaky_relu": for (let i = 0; i < x.length; i++) if (x[i] < 0) x[i] *= op.slope; break;
      case "sigmoid": for (let i = 0; i < x.length; i++) x[i] = 1 / (1 + Math.exp(-x[i])); break;
      default: throw new Error("unknown operation " + op.op);
    }
  }
  return x;
}

function decode(z) { return run(decoderOps, Float32Array.from(z), true); }
function proba(z) {
  if (!headOps) return null;
  const logits = run(headOps, Float32Array.from(z), false);
  let m = -Infinity;
  for (const v of logits) m = Math.max(m, v);
  let s = 0;
  const p = new Float64Array(logits.length);
  for (let i = 0; i < p.length; i++) { p[i] = Math.exp(logits[i] - m); s += p[i]; }
  for (let i = 0; i < p.length; i++) p[i] /= s;
  return p;
}

// ---- geometry: plane coordinates (u, v) and slider offsets -> latent point
const sliderValues = spec.sliders.map(() => 0);
function latent(u, v) {
  const z = new Float64Array(n);
  for (let j = 0; j < n; j++) z[j] = spec.origin[j] + u * spec.axes[0][j] + v * spec.axes[1][j];
  for (let k = 0; k < sliderValues.length; k++) {
    for (let j = 0; j < n; j++) z[j] += sliderValues[k] * spec.axes[k + 2][j];
  }
  return Float32Array.from(z);  // the page decodes float32 points
}

const canvas = document.getElementById("plane");
const ctx = canvas.getContext("2d");
const W = canvas.width, H = canvas.height;
const M = { left: 56, right: 10, top: 10, bottom: 44 };
const PW = W - M.left - M.right, PH = H - M.top - M.bottom;
const [x0, x1, y0, y1] = spec.extent;
function toPlane(px, py) { return [x0 + (px - M.left) / PW * (x1 - x0), y1 - (py - M.top) / PH * (y1 - y0)]; }
function toPixel(u, v) { return [M.left + (u - x0) / (x1 - x0) * PW, M.top + (y1 - v) / (y1 - y0) * PH]; }

function rgb(hex) { return [1, 3, 5].map((i) => parseInt(hex.substr(i, 2), 16)); }
const colors = spec.colors.map(rgb);

// ---- layers of the plane: regions (recomputed with the sliders), points, overlay
const regionCanvas = document.createElement("canvas");
const G = spec.grid_resolution;
regionCanvas.width = G; regionCanvas.height = G;
function drawRegions() {
  const rctx = regionCanvas.getContext("2d");
  rctx.clearRect(0, 0, G, G);
  if (!headOps) return;
  const img = rctx.createImageData(G, G);
  for (let r = 0; r < G; r++) {
    const v = y1 - (r + 0.5) / G * (y1 - y0);
    for (let c = 0; c < G; c++) {
      const u = x0 + (c + 0.5) / G * (x1 - x0);
      const p = proba(latent(u, v));
      let best = 0;
      for (let k = 1; k < p.length; k++) if (p[k] > p[best]) best = k;
      const col = colors[best], o = (r * G + c) * 4;
      img.data[o] = col[0]; img.data[o + 1] = col[1]; img.data[o + 2] = col[2]; img.data[o + 3] = 77;
    }
  }
  rctx.putImageData(img, 0, 0);
}

const pointCanvas = document.createElement("canvas");
pointCanvas.width = W; pointCanvas.height = H;
function drawPoints() {
  const pctx = pointCanvas.getContext("2d");
  const xy = f32(spec.points.xy), labels = spec.points.labels;
  for (let i = 0; i < spec.points.n; i++) {
    const [px, py] = toPixel(xy[2 * i], xy[2 * i + 1]);
    const l = labels[i];
    pctx.fillStyle = l < 0 ? spec.unlabeled_color : spec.colors[l] || "#1f77b4";
    pctx.beginPath(); pctx.arc(px, py, 2.2, 0, 2 * Math.PI); pctx.fill();
  }
  // axes, ticks and names
  pctx.strokeStyle = "#444"; pctx.fillStyle = "#222"; pctx.lineWidth = 1;
  pctx.strokeRect(M.left, M.top, PW, PH);
  pctx.font = "11px sans-serif";
  pctx.textAlign = "center"; pctx.textBaseline = "top";
  for (const t of ticks(x0, x1)) {
    const [px] = toPixel(t, y0);
    pctx.beginPath(); pctx.moveTo(px, M.top + PH); pctx.lineTo(px, M.top + PH + 4); pctx.stroke();
    pctx.fillText(fmt(t), px, M.top + PH + 6);
  }
  pctx.textAlign = "right"; pctx.textBaseline = "middle";
  for (const t of ticks(y0, y1)) {
    const [, py] = toPixel(x0, t);
    pctx.beginPath(); pctx.moveTo(M.left - 4, py); pctx.lineTo(M.left, py); pctx.stroke();
    pctx.fillText(fmt(t), M.left - 6, py);
  }
  pctx.font = "12px sans-serif"; pctx.textAlign = "center"; pctx.textBaseline = "bottom";
  pctx.fillText(spec.axis_names[0], M.left + PW / 2, H - 2);
  pctx.save(); pctx.translate(12, M.top + PH / 2); pctx.rotate(-Math.PI / 2);
  pctx.textBaseline = "middle"; pctx.fillText(spec.axis_names[1], 0, 0); pctx.restore();
}
function ticks(a, b) {
  const span = b - a, step0 = Math.pow(10, Math.floor(Math.log10(span / 5)));
  const step = [1, 2, 5, 10].map((m) => m * step0).find((s) => span / s <= 6);
  const out = [];
  for (let t = Math.ceil(a / step) * step; t <= b + 1e-12; t += step) out.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  return out;
}
function fmt(t) { return Math.abs(t) >= 1000 || (t !== 0 && Math.abs(t) < 0.01) ? t.toExponential(1) : +t.toFixed(2) + ""; }

// ---- state, exposed for scripts and tests
const state = {
  cursor: null,      // [u, v] plane coordinates under the cursor
  current: null,     // {z, x, proba, ms} of the last decoded cursor point
  path: null,        // {a: [u, v], b: [u, v], z: [...], x: [...]} of the dragged path
  decodeTimes: [],   // milliseconds of the last decodes (performance.now())
};
let dragStart = null;

function composite() {
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
  ctx.imageSmoothingEnabled = true;  // soft borders between the grid's cells
  ctx.drawImage(regionCanvas, M.left, M.top, PW, PH);
  ctx.drawImage(pointCanvas, 0, 0);
  if (state.path) {
    const [ax, ay] = toPixel(...state.path.a), [bx, by] = toPixel(...state.path.b);
    ctx.strokeStyle = "#000"; ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.moveTo(ax, ay); ctx.lineTo(bx, by); ctx.stroke();
    ctx.fillStyle = "#000";
    for (let i = 0; i < spec.n_steps; i++) {
      const t = i / (spec.n_steps - 1);
      ctx.beginPath(); ctx.arc(ax + t * (bx - ax), ay + t * (by - ay), 2.5, 0, 2 * Math.PI); ctx.fill();
    }
  }
  if (state.cursor) {
    const [px, py] = toPixel(...state.cursor);
    ctx.strokeStyle = "#000"; ctx.lineWidth = 1;
    ctx.beginPath(); ctx.arc(px, py, 6, 0, 2 * Math.PI); ctx.stroke();
    ctx.beginPath(); ctx.moveTo(px - 10, py); ctx.lineTo(px + 10, py);
    ctx.moveTo(px, py - 10); ctx.lineTo(px, py + 10); ctx.stroke();
  }
}

// ---- decoded output: image or feature profile
const out = spec.output;
function drawImage(target, x, dx, dy, dw, dh) {
  const tctx = target.getContext("2d");
  const [c, h, w] = out.shape, tmp = document.createElement("canvas");
  tmp.width = w; tmp.height = h;
  const t = tmp.getContext("2d"), img = t.createImageData(w, h);
  const scale = 255 / (out.vmax - out.vmin);
  for (let p = 0; p < h * w; p++) {
    for (let k = 0; k < 3; k++) {
      const v = c === 1 ? x[p] : x[k * h * w + p];
      let g = (v - out.vmin) * scale;
      g = g < 0 ? 0 : g > 255 ? 255 : g;
      img.data[4 * p + k] = c === 1 ? 255 - g : g;  // grey images in gray_r, as the displays
    }
    img.data[4 * p + 3] = 255;
  }
  t.putImageData(img, 0, 0);
  tctx.imageSmoothingEnabled = false;
  tctx.drawImage(tmp, dx, dy, dw, dh);
}
function drawProfile(target, x, dx, dy, dw, dh) {
  const tctx = target.getContext("2d");
  const m = x.length, zero = dy + dh * out.vmax / (out.vmax - out.vmin);
  tctx.fillStyle = "#fafafa"; tctx.fillRect(dx, dy, dw, dh);
  tctx.fillStyle = "#1f77b4";
  for (let i = 0; i < m; i++) {
    const v = Math.max(out.vmin, Math.min(out.vmax, x[i]));
    const top = dy + dh * (out.vmax - v) / (out.vmax - out.vmin);
    const bx = dx + i * dw / m;
    tctx.fillRect(bx, Math.min(top, zero), Math.max(dw / m - (m < 60 ? 1 : 0), 0.5), Math.abs(zero - top));
  }
  tctx.strokeStyle = "#888"; tctx.beginPath(); tctx.moveTo(dx, zero); tctx.lineTo(dx + dw, zero); tctx.stroke();
}
const draw = out.kind === "image" ? drawImage : drawProfile;

const decodedCanvas = document.getElementById("decoded");
if (out.kind === "profile") {
  decodedCanvas.width = 400; decodedCanvas.height = 200;
  decodedCanvas.style.width = "400px"; decodedCanvas.style.height = "200px";
}
const probaDiv = document.getElementById("proba");
const probaBars = [];
if (headOps) {
  spec.classes.forEach((name, k) => {
    const row = document.createElement("div"); row.className = "bar-row";
    const label = dataText(name); label.title = name;  // the whole name, where the row cuts it
    const bar = document.createElement("div"); bar.className = "bar";
    const fill = document.createElement("div"); fill.style.background = spec.colors[k]; fill.style.width = "0%";
    bar.appendChild(fill);
    const value = document.createElement("span"); value.textContent = "";
    row.append(label, bar, value); probaDiv.appendChild(row);
    probaBars.push([row, fill, value]);
  });
} else {
  document.getElementById("proba-section").style.display = "none";
}

// Over the bar chart, the feature under the pointer: its name and decoded value.
const featureDiv = document.getElementById("feature");
function showFeature(event) {
  if (!state.current) return;
  const r = decodedCanvas.getBoundingClientRect(), m = out.n_features;
  const i = Math.min(m - 1, Math.max(0, Math.floor((event.clientX - r.left) / r.width * m)));
  const name = out.feature_names ? out.feature_names[i] : "feature " + (i + 1);
  featureDiv.replaceChildren(dataText(name), " = " + state.current.x[i].toFixed(3));
}
if (out.kind === "profile") decodedCanvas.addEventListener("pointermove", showFeature);

function timed(z) {
  const t0 = performance.now();
  const x = decode(z);
  const ms = performance.now() - t0;
  state.decodeTimes.push(ms);
  if (state.decodeTimes.length > 200) state.decodeTimes.shift();
  return [x, ms];
}

function showCursor() {
  if (!state.cursor) return;
  const z = latent(...state.cursor);
  const [x, ms] = timed(z);
  const p = proba(z);
  state.current = { z: Array.from(z), x: Array.from(x), proba: p ? Array.from(p) : null, ms: ms };
  const dctx = decodedCanvas.getContext("2d");
  dctx.clearRect(0, 0, decodedCanvas.width, decodedCanvas.height);
  draw(decodedCanvas, x, 0, 0, decodedCanvas.width, decodedCanvas.height);
  if (p) {
    let best = 0;
    for (let k = 1; k < p.length; k++) if (p[k] > p[best]) best = k;
    probaBars.forEach(([row, fill, value], k) => {
      fill.style.width = (100 * p[k]).toFixed(1) + "%";
      value.textContent = p[k].toFixed(3);
      row.className = k === best ? "bar-row best" : "bar-row";
    });
  }
  const zs = Array.from(z).map((v) => v.toFixed(2)).join(", ");
  document.getElementById("where").textContent =
    "plane (" + state.cursor.map((v) => v.toFixed(2)).join(", ") + ")  z = [" + zs + "]";
  const times = state.decodeTimes, mean = times.reduce((a, b) => a + b, 0) / times.length;
  document.getElementById("timing").textContent =
    "decoding in the browser: " + ms.toFixed(3) +
    " ms for this point, " + mean.toFixed(3) + " ms on average over the last " + times.length;
}

// The path strip is decoded a few images per frame, so that dragging stays smooth.
const strip = document.getElementById("strip");
let pathJob = 0;
function startPath() {
  const job = ++pathJob, path = state.path, k = spec.n_steps;
  const za = latent(...path.a), zb = latent(...path.b);
  path.z = []; path.x = [];
  const gap = 4, tile = Math.max(8, Math.min(out.kind === "image" ? 56 : 80, Math.floor((420 - gap * (k - 1)) / k)));
  strip.width = k * (tile + gap) - gap; strip.height = tile;
  strip.style.width = strip.width + "px"; strip.style.height = strip.height + "px";
  const sctx = strip.getContext("2d");
  sctx.clearRect(0, 0, strip.width, strip.height);
  let i = 0;
  function step() {
    if (job !== pathJob) return;
    const t0 = performance.now();
    while (i < k && performance.now() - t0 < 12) {
      const t = i / (k - 1), z = new Float64Array(n);
      // (1 - t) a + t b, exact at both ends as skvae.regions.segment_points
      for (let j = 0; j < n; j++) z[j] = (1 - t) * za[j] + t * zb[j];
      const z32 = Float32Array.from(z), [x] = timed(z32);
      path.z.push(Array.from(z32)); path.x.push(Array.from(x));
      draw(strip, x, i * (tile + gap), 0, tile, tile);
      i++;
    }
    if (i < k) requestAnimationFrame(step); else path.done = true;
  }
  step();
}

// ---- input
// Pointer events only record where the pointer is; the next animation frame
// draws and decodes, once however many events came.
let pending = false, pathChanged = false;
function schedule() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    composite();
    showCursor();
    if (pathChanged && state.path) { pathChanged = false; startPath(); }
  });
}
function planeAt(event) {
  const r = canvas.getBoundingClientRect();
  const px = (event.clientX - r.left) * W / r.width, py = (event.clientY - r.top) * H / r.height;
  if (px < M.left || px > M.left + PW || py < M.top || py > M.top + PH) return null;
  return toPlane(px, py);
}
canvas.addEventListener("pointermove", (event) => {
  const at = planeAt(event);
  if (!at) return;
  state.cursor = at;
  if (dragStart) { state.path = { a: dragStart, b: at, z: [], x: [], done: false }; pathChanged = true; }
  schedule();
});
canvas.addEventListener("pointerdown", (event) => {
  const at = planeAt(event);
  if (!at) return;
  dragStart = at;
  state.path = null;
  canvas.setPointerCapture(event.pointerId);
  schedule();
});
canvas.addEventListener("pointerup", () => { dragStart = null; });

const sliderDiv = document.getElementById("sliders");
if (spec.sliders.length) {
  const head = document.createElement("div"); head.className = "small";
  head.textContent = "Offset of the plane along the other principal axes:";
  sliderDiv.appendChild(head);
}
spec.sliders.forEach((s, k) => {
  const row = document.createElement("label"); row.className = "slider";
  const name = document.createElement("span"); name.textContent = s.name;
  // Ticks -100..100: 0 is the plane through the mean, -100 and 100 the
  // lowest and highest coordinate of a latent mean along the axis.
  const input = document.createElement("input");
  input.type = "range"; input.min = -100; input.max = 100; input.step = 1; input.value = 0;
  const value = document.createElement("span"); value.textContent = "0.00";
  input.addEventListener("input", () => {
    const tick = +input.value;
    sliderValues[k] = tick < 0 ? -tick / 100 * s.min : tick / 100 * s.max;
    value.textContent = sliderValues[k].toFixed(2);
    drawRegions();
    if (state.path) pathChanged = true;
    schedule();
  });
  row.append(name, input, value); sliderDiv.appendChild(row);
});

const legend = document.getElementById("legend");
function legendItem(color, name) {
  const item = document.createElement("span");
  const swatch = document.createElement("span"); swatch.className = "swatch"; swatch.style.background = color;
  item.append(swatch, dataText(name));
  legend.appendChild(item);
}
if (spec.classes.length) {
  const title = document.createElement("span"); title.textContent = spec.label_title + ":";
  legend.appendChild(title);
  spec.classes.forEach((name, k) => legendItem(spec.colors[k], name));
}
if (spec.points.labels.some((l) => l < 0)) legendItem(spec.unlabeled_color, "unlabeled");

const about = [];
about.push(n === 2
  ? "The plane is the 2-D latent space."
  : "The plane is spanned by the first two principal axes of the " + n + "-D latent means, through their mean; " +
    "each slider moves it along one of the remaining principal axes. Points are the latent means projected " +
    "on the plane.");
about.push(spec.points.n < spec.n_points_total
  ? spec.points.n + " of " + spec.n_points_total + " latent means drawn." : spec.points.n + " latent means drawn.");
if (headOps) about.push("Shaded: the class the latent classifier predicts, on a " + G + "x" + G + " grid.");
about.push("Move the cursor to decode a latent point; drag to decode the straight path between two points (" +
  spec.n_steps + " steps). Everything is computed in this page, from the embedded decoder weights (float32).");
document.getElementById("about").textContent = about.join(" ");

drawRegions(); drawPoints(); composite();

// Shown in an iframe (Jupyter, the docs), the page sets the frame's height
// to its own, whether its panels sit side by side or stack in a narrow one.
// A frame of another origin cannot be reached: its fixed height stays.
function fitFrame() {
  try {
    const frame = window.frameElement;
    if (frame) frame.style.height = document.documentElement.scrollHeight + "px";
  } catch (error) { /* cross-origin parent */ }
}
fitFrame();
window.addEventListener("resize", fitFrame);

window.skvaeExplorer = {
  spec: spec,
  state: state,
  get current() { return state.current; },
  decode: (z) => Array.from(decode(z)),
  proba: (z) => { const p = proba(z); return p ? Array.from(p) : null; },
  latent: (u, v) => Array.from(latent(u, v)),
  toPixel: toPixel,
  // Moves slider k to tick -100..100 as a user would; returns the offset.
  setSlider: (k, tick) => {
    const input = sliderDiv.querySelectorAll("input")[k];
    input.value = tick; input.dispatchEvent(new Event("input"));
    return sliderValues[k];
  },
  sliderValues: sliderValues,
  // Resolves after the next two animation frames: the pointer's effect is drawn.
  settled: () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))),
};
})();
