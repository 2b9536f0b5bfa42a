// The BEDS dashboard: polls /api/cluster every second and redraws tables and <canvas> charts in
// place (no reload, no libraries, no network assets). Every number a test reads sits in an
// element with a stable data attribute (data-node / data-op / data-total + data-field) and its raw
// value in data-value; the text is the same value formatted for people.
"use strict";

const POLL_MS = 1000;
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
  "#17becf", "#7f7f7f", "#bcbd22"];
const DASHES = { p50: [2, 3], p95: [], p99: [7, 3] };
let updates = 0;
let last = null;

function colorOf(name) {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

function fmt(value, kind) {
  if (value === null || value === undefined) return "—";
  if (kind === "int") return String(Math.round(value));
  if (kind === "age") return value < 1 ? "now" : value.toFixed(0) + " s ago";
  const v = Number(value);
  if (v === 0) return "0";
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function setField(cell, value, kind) {
  const raw = value === null || value === undefined ? "" : String(value);
  if (cell.dataset.value !== raw) cell.dataset.value = raw;
  const text = fmt(value, kind);
  if (cell.textContent !== text) cell.textContent = text;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

// -- tables ---------------------------------------------------------------------------------

const NODE_COLS = [["rps"], ["errors_per_s"], ["errors", "int"], ["p50"], ["p95"], ["p99"],
  ["inflight", "int"], ["dead_letters", "int"], ["age", "age"]];
const OP_COLS = [["rps"], ["errors_per_s"], ["p50"], ["p95"], ["p99"], ["requests", "int"],
  ["errors", "int"]];

function syncRows(tbody, key, items, build, update) {
  const seen = new Set();
  for (const [name, item] of items) {
    seen.add(name);
    let row = [...tbody.children].find((r) => r.dataset[key] === name);
    if (!row) { row = build(name); tbody.append(row); }
    update(row, item);
  }
  for (const row of [...tbody.children]) if (!seen.has(row.dataset[key])) row.remove();
}

function nodeRow(name) {
  const row = el("tr", { "data-node": name }, el("td", { "data-field": "node" }, name),
    el("td", { "data-field": "role" }), el("td", { "data-field": "state", class: "state" }),
    el("td", { "data-field": "brokers" }));
  for (const [field] of NODE_COLS) row.append(el("td", { "data-field": field, class: "num" }));
  return row;
}

function updateNodeRow(row, n) {
  const cell = (f) => row.querySelector(`[data-field="${f}"]`);
  cell("role").textContent = n.role || "";
  cell("state").dataset.value = n.state;
  cell("state").textContent = n.state;
  const brokers = cell("brokers");
  const names = Object.keys(n.brokers || {});
  for (const span of [...brokers.children]) {
    if (!names.includes(span.dataset.broker)) span.remove();
  }
  for (const name of names) {
    const b = n.brokers[name];
    let span = brokers.querySelector(`[data-broker="${CSS.escape(name)}"]`);
    if (!span) {
      span = el("span", { class: "broker", "data-broker": name },
        el("span", { class: "name" }, name + " "), el("span", { "data-field": "instances" }), "/",
        el("span", { "data-field": "desired" }));
      brokers.append(span);
    }
    setField(span.querySelector('[data-field="instances"]'), b.instances, "int");
    setField(span.querySelector('[data-field="desired"]'), b.desired, "int");
  }
  for (const [field, kind] of NODE_COLS) setField(cell(field), n[field], kind);
  cell("errors").classList.toggle("err", n.errors > 0);
}

function opRow(name) {
  const row = el("tr", { "data-op": name }, el("td", { "data-field": "op" }, name));
  for (const [field] of OP_COLS) row.append(el("td", { "data-field": field, class: "num" }));
  row.append(el("td", { "data-field": "nodes" }));
  return row;
}

function updateOpRow(row, o) {
  for (const [field, kind] of OP_COLS) setField(row.querySelector(`[data-field="${field}"]`), o[field], kind);
  row.querySelector('[data-field="errors"]').classList.toggle("err", o.errors > 0);
  row.querySelector('[data-field="nodes"]').textContent = (o.nodes || []).join(", ");
}

// -- charts ---------------------------------------------------------------------------------

function drawChart(name, t, lines, kind) {
  const canvas = document.querySelector(`canvas[data-chart="${name}"]`);
  const legend = document.querySelector(`[data-legend="${name}"]`);
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr)) canvas.width = Math.round(w * dpr);
  if (canvas.height !== Math.round(h * dpr)) canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const left = 46, right = 8, top = 8, bottom = 20;
  const pw = w - left - right, ph = h - top - bottom;
  let max = 0;
  for (const line of lines) for (const v of line.values) if (v !== null && v > max) max = v;
  max = niceMax(max, kind === "int");
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#6b7480";
  ctx.strokeStyle = "#e3e6ea";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = top + ph - (ph * i) / 4;
    ctx.beginPath(); ctx.moveTo(left, y + 0.5); ctx.lineTo(left + pw, y + 0.5); ctx.stroke();
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    ctx.fillText(fmt((max * i) / 4, kind), left - 6, y);
  }
  if (t.length > 1) {
    const t0 = t[0], t1 = t[t.length - 1];
    ctx.textBaseline = "top";
    [[t0, "left"], [t1, "right"]].forEach(([ts, align]) => {
      ctx.textAlign = align;
      ctx.fillText(new Date(ts * 1000).toLocaleTimeString(), align === "left" ? left : left + pw, top + ph + 5);
    });
    const x = (i) => left + (pw * (t[i] - t0)) / (t1 - t0 || 1);
    const y = (v) => top + ph - (ph * v) / max;
    for (const line of lines) {
      ctx.strokeStyle = line.color;
      ctx.lineWidth = 1.6;
      ctx.setLineDash(line.dash || []);
      ctx.beginPath();
      let pen = false;
      line.values.forEach((v, i) => {
        if (v === null || v === undefined) { pen = false; return; }
        if (pen) ctx.lineTo(x(i), y(v)); else ctx.moveTo(x(i), y(v));
        pen = true;
      });
      ctx.stroke();
    }
    ctx.setLineDash([]);
  }
  const shown = lines.filter((l) => l.values.some((v) => v !== null && v !== undefined));
  legend.replaceChildren(...shown.map((l) => {
    const lastValue = [...l.values].reverse().find((v) => v !== null && v !== undefined);
    const span = el("span", { "data-series": l.label, "data-value": lastValue },
      `${l.label} ${fmt(lastValue, kind)}`);
    span.style.setProperty("--c", l.color);
    span.style.setProperty("--dash", !l.dash || !l.dash.length ? "solid" : l.dash[0] < 4 ? "dotted" : "dashed");
    return span;
  }));
  if (!shown.length) legend.replaceChildren(el("span", { class: "empty" }, "no data yet"));
  canvas.dataset.points = String(t.length);
}

function niceMax(v, integer) {
  if (integer) return v <= 4 ? 4 : 4 * Math.ceil(niceMax(v / 4, false));   // whole grid steps
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 4, 6, 8, 10]) if (m * p >= v) return m * p;   // quarters read well
  return v;
}

function quantile() {
  const checked = document.querySelector('input[name="q"]:checked');
  return checked ? checked.value : "p95";
}

function drawCharts(s) {
  const series = s.series || { t: [], nodes: {}, ops: {}, dead_letters: [] };
  const t = series.t;
  const per = (group, field, extra) => Object.entries(group).map(([name, cols]) => ({
    label: name, color: colorOf(name), values: cols[field], ...(extra || {}),
  }));
  drawChart("rps-node", t, per(series.nodes, "rps"));
  drawChart("rps-op", t, per(series.ops, "rps"));
  drawChart("latency-op", t, per(series.ops, quantile()));
  const latencyNode = [];
  for (const [name, cols] of Object.entries(series.nodes)) {
    for (const q of ["p50", "p95", "p99"]) {
      latencyNode.push({ label: `${name} ${q}`, color: colorOf(name), values: cols[q], dash: DASHES[q] });
    }
  }
  drawChart("latency-node", t, latencyNode);
  drawChart("errors-op", t, per(series.ops, "errors_per_s"));
  drawChart("errors-node", t, per(series.nodes, "errors_per_s"));
  const instances = [];
  for (const [name, cols] of Object.entries(series.nodes)) {
    for (const [broker, values] of Object.entries(cols.instances || {})) {
      instances.push({ label: `${name}/${broker}`, color: colorOf(`${name}/${broker}`), values });
    }
  }
  drawChart("instances", t, instances, "int");
  drawChart("dead-letters", t, [{ label: "dead letters", color: "#c62828", values: series.dead_letters }], "int");
}

// -- polling --------------------------------------------------------------------------------

function render(s) {
  last = s;
  syncRows(document.querySelector("#nodes tbody"), "node", Object.entries(s.nodes || {}),
    nodeRow, updateNodeRow);
  syncRows(document.querySelector("#ops tbody"), "op", Object.entries(s.ops || {}), opRow,
    updateOpRow);
  const totals = s.totals || {};
  setField(document.getElementById("total-nodes"), totals.nodes, "int");
  setField(document.getElementById("total-rps"), totals.rps);
  setField(document.getElementById("total-errors-per-s"), totals.errors_per_s);
  setField(document.getElementById("total-errors"), totals.errors, "int");
  setField(document.getElementById("dead-letters"), s.dead_letters, "int");
  drawCharts(s);
  updates += 1;
  setField(document.getElementById("updates"), updates, "int");
  document.getElementById("updated").textContent = new Date(s.at * 1000).toLocaleTimeString();
}

function setStatus(value) {
  const status = document.getElementById("status");
  status.dataset.value = value;
  status.textContent = value;
}

async function poll() {
  try {
    const response = await fetch("api/cluster", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    render(await response.json());
    setStatus("live");
  } catch (err) {
    setStatus("offline");
    console.warn("dashboard: poll failed", err);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

document.querySelectorAll('input[name="q"]').forEach((input) => {
  input.addEventListener("change", () => { if (last) drawCharts(last); });
});
window.addEventListener("resize", () => { if (last) drawCharts(last); });
poll();
