// The page: titles or a CSV in, labels with score bars out, results as CSV; with --label_folder, the labelling
// view. No libraries, nothing fetched from outside this server.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY = "jobtitles.apiKey";
let info = null;
let last = null; // the last PredictResponse

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const key = localStorage.getItem(KEY);
  if (key) h["X-API-Key"] = key;
  return h;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function call(path, options) {
  let resp;
  try {
    resp = await fetch(path, options);
  } catch (err) {
    throw new Error("the server did not answer (" + err.message + ")");
  }
  const body = await resp.json().catch(() => null);
  if (resp.status === 401) $("key-box").hidden = false;
  if (!resp.ok) {
    const msg = body && body.error ? body.error.message : resp.status + " " + resp.statusText;
    throw new Error(msg);
  }
  return body;
}

function pct(x) { return x == null ? "n/a" : (100 * x).toFixed(1) + "%"; }

async function loadInfo() {
  try {
    info = await call("/info", { headers: headers() });
  } catch (err) {
    $("model-summary").textContent = "Model information unavailable: " + err.message;
    return;
  }
  $("model-summary").textContent = info.labels.length + " labels · CV micro-F1 " + pct(info.cv_micro_f1) +
    " · subset accuracy " + pct(info.cv_subset_accuracy) + " · " + info.backend;
  const rows = [
    ["Labels", info.labels.join(", ")],
    ["Base model", info.base_model || "n/a"],
    ["Backend", info.backend + " (" + info.backend_reason + ")"],
    ["Max tokens", String(info.max_length) + " (longer titles are cut)"],
  ];
  for (const m of info.cv_metrics) rows.push([m.name, String(m.value)]);
  rows.push(["Thresholds", Object.entries(info.thresholds).map(([k, v]) => k + " " + v.toFixed(2)).join(", ")]);
  if (info.exclusive_label) rows.push(["Empty label", info.exclusive_label + " (never beside another label)"]);
  if (info.pipeline_gap) rows.push(["Plain pipeline", info.pipeline_gap]);
  for (const g of info.label_groups || []) {
    const none = g.kind === "exactly_one" ? "" : " or none";
    rows.push(["Label group", g.name + ": one of " + g.labels.join(", ") + none]);
  }
  const dl = $("model-info");
  dl.replaceChildren();
  for (const [k, v] of rows) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    dl.append(dt, dd);
  }
  loadQueue();
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

// Why a score past its threshold is not a label, by the rule of jobtitles/core/decision_rule.py: label groups
// are decided first (the group's top score), then the empty label (where it and another label pass, the higher
// score wins). null where the label is kept, below its threshold, or no rule explains it.
function heldBack(p, lab) {
  if (!info || p.labels.includes(lab) || !(p.scores[lab] >= info.thresholds[lab])) return null;
  const group = (info.label_groups || []).find((g) => g.labels.includes(lab));
  if (group) {
    const top = group.labels.reduce((a, b) => (p.scores[b] > p.scores[a] ? b : a));
    if (top !== lab) return "past its threshold, but one label per group (" + group.name + "): " + top + " won";
  }
  const empty = info.exclusive_label;
  if (!empty) return null;
  if (lab === empty) {
    const other = p.labels.slice().sort((a, b) => p.scores[b] - p.scores[a])[0];
    return other ? "past its threshold, but " + empty + " never stands beside another label: " + other + " won"
      : null;
  }
  return p.labels.includes(empty)
    ? "past its threshold, but " + empty + " never stands beside another label and scored higher" : null;
}

function clearResults() {
  last = null;
  $("results").querySelector("tbody").replaceChildren();
  $("results-box").hidden = true;
}

function render(res) {
  last = res;
  const tbody = $("results").querySelector("tbody");
  tbody.replaceChildren();
  for (const p of res.predictions) {
    const tr = el("tr", "result");
    const title = el("td", "title", p.title);
    const labels = el("td", "labels");
    for (const lab of p.labels) labels.append(el("span", "chip", lab));
    if (p.truncated) labels.append(el("span", "note", "cut to " + res.max_length + " tokens"));
    const bars = el("td", "bars");
    const order = res.labels.slice().sort((a, b) => p.scores[b] - p.scores[a]);
    for (const lab of order) {
      const s = p.scores[lab];
      const bar = el("div", "bar" + (p.labels.includes(lab) ? " on" : ""));
      bar.title = lab + ": " + s.toFixed(3);
      const track = el("div", "track");
      const fill = el("div", "fill");
      fill.style.width = (100 * s).toFixed(1) + "%";
      track.append(fill);
      if (info && info.thresholds[lab] != null) {
        const tick = el("div", "tick");
        tick.style.left = (100 * info.thresholds[lab]).toFixed(1) + "%";
        tick.title = "threshold " + info.thresholds[lab].toFixed(2);
        track.append(tick);
      }
      bar.append(el("span", "name", lab), track, el("span", "value", s.toFixed(2)));
      const why = heldBack(p, lab);
      if (why) {
        bar.classList.add("held");
        bar.title += " · " + why;
        bar.append(el("span", "why", why));
      }
      bars.append(bar);
    }
    tr.append(title, labels, bars);
    tbody.append(tr);
  }
  $("results-box").hidden = false;
  const cut = res.n_truncated ? " · " + res.n_truncated + " cut to " + res.max_length + " tokens" : "";
  $("status").textContent = res.predictions.length + " title(s)" + cut;
}

async function run(path, options) {
  showError("");
  $("status").textContent = "Predicting…";
  $("predict").disabled = true;
  try {
    render(await call(path, options));
  } catch (err) {
    $("status").textContent = "";
    clearResults(); // the previous answer's rows beside this error would read as this request's results
    showError(err.message);
  } finally {
    $("predict").disabled = false;
  }
}

function predictText() {
  const titles = $("titles").value.split(/\r?\n/).map((t) => t.trim()).filter((t) => t);
  if (!titles.length) { showError("Type at least one title (one per line)."); return; }
  run("/predict", { method: "POST", headers: headers({ "Content-Type": "application/json" }),
                    body: JSON.stringify({ titles }) });
}

function predictFile(file) {
  if (!file) return;
  const form = new FormData();
  form.append("file", file, file.name);
  run("/predict_csv", { method: "POST", headers: headers(), body: form });
}

// A text cell that a spreadsheet would run as a formula gets a leading "'" (OWASP "CSV Injection"): the pattern
// of jobtitles/core/spreadsheet.py (FORMULA_START; tests/test_spreadsheet_safety.py keeps the two equal).
const FORMULA_START = /^'*[\u0001-\u0008\u000b-\u000c\u000e-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028-\u2029\u202f\u205f\u3000]*[\u0000\u0009-\u000a\u000d\u002b\u002d\u003d\u0040\u207a\u207c\u208a\u208c\u2a75-\u2a76\ufb29\ufe62-\ufe63\ufe66\ufe6b\uff0b\uff0d\uff1d\uff20]/;

function textCell(s) {
  return FORMULA_START.test(s) ? "'" + s : s;
}

function csvCell(v) {
  const s = String(v);
  return /[;"\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

function download() {
  if (!last) return;
  const head = ["row", "title", "predicted", "truncated"].concat(last.labels.map((l) => "score:" + l));
  const lines = [head.map(csvCell).join(";")];
  last.predictions.forEach((p, i) => {
    const cells = [p.row != null ? p.row : i + 1, textCell(p.title), textCell(p.labels.join(" | ")), p.truncated]
      .concat(last.labels.map((l) => p.scores[l].toFixed(6)));
    lines.push(cells.map(csvCell).join(";"));
  });
  const blob = new Blob([lines.join("\n") + "\n"], { type: "text/csv;charset=utf-8" });
  const a = el("a");
  a.href = URL.createObjectURL(blob);
  a.download = "predictions.csv";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

$("predict").addEventListener("click", predictText);
$("titles").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) predictText(); });
$("csv-file").addEventListener("change", (e) => { predictFile(e.target.files[0]); e.target.value = ""; });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  predictFile(e.dataTransfer.files[0]);
});
// --- The labelling view (serve --label_folder DIR): titles from DIR/suggestions.csv with the model's labels as
// toggles, one label per label group and the empty label alone (the rules POST /label/accept checks); Accept
// appends the row to DIR/labelled.csv and takes it off the list, Skip only takes it off the list.
let queue = null;        // the last /label/queue answer: labels, groups, empty label, file
let written = 0;         // rows this page has written
const passed = new Set(); // titles accepted or skipped here, not offered again when the queue reloads

function titleKey(t) { return t.split(/\s+/).filter((w) => w).join(" ").toLowerCase(); }

function labelMessage(text) {
  $("label-message").textContent = text || "";
  $("label-message").hidden = !text;
}

function labelCount() {
  $("label-count").textContent = written + " row(s) written to " + queue.file + " · " + queue.labelled +
    " title(s) in it";
}

async function loadQueue() {
  if (!info || !info.labelling) { $("label-box").hidden = true; return; }
  $("label-box").hidden = false;
  try {
    queue = await call("/label/queue", { headers: headers() });
  } catch (err) {
    labelMessage(err.message);
    return;
  }
  const list = $("label-queue");
  list.replaceChildren();
  for (const item of queue.items) if (!passed.has(titleKey(item.title))) list.append(labelItem(item));
  labelMessage(queue.message || (list.children.length ? "" : "Every suggested title is labelled or skipped; " +
    "type titles below, or make new suggestions with jobtitles suggest."));
  labelCount();
}

function press(li, button, on) {
  if (on) {  // the labels that cannot stand beside this one let go first
    const lab = button.dataset.label, empty = queue.empty_label;
    const group = (queue.label_groups || []).find((g) => g.labels.includes(lab));
    for (const other of li.querySelectorAll(".toggle")) {
      const o = other.dataset.label;
      if (o !== lab && ((group && group.labels.includes(o)) || (empty && (o === empty) !== (lab === empty)))) {
        other.setAttribute("aria-pressed", "false");
      }
    }
  }
  button.setAttribute("aria-pressed", String(on));
}

function labelItem(item) {
  const li = el("li", "label-item");
  li.dataset.title = item.title;
  const about = [item.reason, item.pool_count != null ? item.pool_count + "× in the pool" : ""].filter((x) => x);
  li.append(el("div", "title", item.title));
  if (about.length) li.append(el("div", "muted", about.join(" · ")));
  const toggles = el("div", "toggles");
  for (const lab of queue.labels) {
    const b = el("button", "toggle", lab);
    b.type = "button";
    b.dataset.label = lab;
    b.setAttribute("aria-pressed", "false");
    const group = (queue.label_groups || []).find((g) => g.labels.includes(lab));
    if (group) b.title = group.name + ": one of " + group.labels.join(", ");
    b.addEventListener("click", () => press(li, b, b.getAttribute("aria-pressed") !== "true"));
    toggles.append(b);
  }
  li.append(toggles);
  for (const lab of item.labels) {
    const b = Array.from(toggles.children).find((x) => x.dataset.label === lab);
    if (b) press(li, b, true);
  }
  const accept = el("button", "accept", "Accept");
  const skip = el("button", "skip plain", "Skip");
  accept.type = skip.type = "button";
  accept.addEventListener("click", () => acceptItem(li, accept));
  skip.addEventListener("click", () => { passed.add(titleKey(item.title)); li.remove(); });
  const actions = el("div", "row");
  actions.append(accept, skip);
  li.append(actions, el("p", "label-error"));
  return li;
}

async function acceptItem(li, button) {
  const labels = Array.from(li.querySelectorAll(".toggle[aria-pressed=true]")).map((b) => b.dataset.label);
  const error = li.querySelector(".label-error");
  error.textContent = "";
  button.disabled = true;
  try {
    const res = await call("/label/accept", { method: "POST", headers: headers({ "Content-Type": "application/json" }),
                                              body: JSON.stringify({ rows: [{ title: li.dataset.title, labels }] }) });
    written += res.written.length;
    queue.labelled = res.labelled;
    passed.add(titleKey(li.dataset.title));
    li.remove();
    labelCount();
    labelMessage(res.skipped.map((s) => s.title + ": " + s.reason + ", nothing replaced").join("; "));
  } catch (err) {
    error.textContent = err.message;
    button.disabled = false;
  }
}

async function addTitles() {
  const titles = $("label-titles").value.split(/\r?\n/).map((t) => t.trim()).filter((t) => t);
  if (!titles.length || !queue) { labelMessage("Type at least one title (one per line)."); return; }
  try {
    const res = await call("/predict", { method: "POST", headers: headers({ "Content-Type": "application/json" }),
                                         body: JSON.stringify({ titles }) });
    const list = $("label-queue");
    for (const p of res.predictions) list.prepend(labelItem({ title: p.title, labels: p.labels, reason: "typed in" }));
    $("label-titles").value = "";
    labelMessage("");
  } catch (err) {
    labelMessage(err.message);
  }
}

$("label-add").addEventListener("click", addTitles);
$("label-reload").addEventListener("click", loadQueue);
$("download").addEventListener("click", download);
$("save-key").addEventListener("click", () => {
  localStorage.setItem(KEY, $("api-key").value.trim());
  $("key-box").hidden = true;
  showError("");
  loadInfo();
});
loadInfo();
