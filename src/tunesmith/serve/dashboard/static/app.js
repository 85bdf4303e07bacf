// tunesmith dashboard: a small vanilla layer over the /v1 API. Every call sends the session cookie (same
// origin) and the page's CSRF token; text from the server is only ever set as textContent, never as HTML.
"use strict";

const CSRF = document.querySelector('meta[name="csrf-token"]').content;
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const COLORS = ["#3b5bdb", "#e8590c", "#2b8a3e", "#ae3ec9", "#c92a2a", "#1098ad", "#f59f00", "#495057"];
const $ = (sel, root = document) => root.querySelector(sel);

// ------------------------------------------------------------------ plumbing

async function api(method, path, body) {
  const headers = { "X-CSRF-Token": CSRF };
  const init = { method, headers, credentials: "same-origin" };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  const r = await fetch(path, init);
  if (r.status === 401) { location.href = "/ui/login"; throw new Error("signed out"); }
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((data.error && data.error.message) || `${r.status} ${r.statusText}`);
  return data;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "style") node.style.cssText = v; // CSSOM: allowed by the CSP, unlike a style attribute
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

function age(ts) {
  const s = Math.max(0, Date.now() / 1000 - ts);
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h`;
  return `${Math.round(s / 86400)} d`;
}

function toast(message) {
  const t = $("#toast");
  t.textContent = message;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 5000);
}

const badge = (status) => el("span", { class: `badge ${status}` }, status);
const fmt = (v) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : String(v));

// A job's events, oldest first. With ``known`` (the list from the previous poll) only the pages newer than
// its last event are fetched, so polling a long job stays one small request.
async function allEvents(jobId, known = []) {
  const seen = new Set(known.map((e) => e.id));
  const fresh = [];
  let after = null;
  for (let page = 0; page < 100; page++) {
    const q = `limit=100${after ? `&after=${encodeURIComponent(after)}` : ""}`;
    const r = await api("GET", `/v1/fine_tuning/jobs/${encodeURIComponent(jobId)}/events?${q}`);
    const cut = r.data.findIndex((e) => seen.has(e.id));
    fresh.push(...(cut >= 0 ? r.data.slice(0, cut) : r.data));
    if (cut >= 0 || !r.has_more || !r.data.length) break;
    after = r.data[r.data.length - 1].id;
  }
  return known.concat(fresh.reverse());
}

const metricRows = (events) => events.filter((e) => e.type === "metrics" && e.data).map((e) => e.data);

function series(rows, key) {
  return rows.filter((r) => typeof r[key] === "number" && typeof r.step === "number").map((r) => [r.step, r[key]]);
}

async function modelOptions(list) {
  const r = await api("GET", "/v1/models");
  list.replaceChildren(...r.data.map((m) => el("option", { value: m.id }, m.owned_by)));
  return r.data;
}

// ------------------------------------------------------------------ chart (inline SVG)

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function lineChart(box, lines) {
  lines = lines.filter((l) => l.points.length);
  if (!lines.length) { box.replaceChildren(el("div", { class: "empty" }, "No metrics yet: curves appear as training logs steps.")); return; }
  const W = 600, H = 240, L = 52, R = 12, T = 12, B = 44;
  const xs = lines.flatMap((l) => l.points.map((p) => p[0])), ys = lines.flatMap((l) => l.points.map((p) => p[1]));
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= 0.5; y1 += 0.5; }
  const pad = (y1 - y0) * 0.08; y0 -= pad; y1 += pad;
  const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R), sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": lines.map((l) => l.name).join(", ") });
  for (let i = 0; i <= 4; i++) {
    const y = y0 + ((y1 - y0) * i) / 4;
    root.append(svg("line", { x1: L, x2: W - R, y1: sy(y), y2: sy(y), stroke: "#e9ecef" }));
    root.append(svg("text", { x: L - 6, y: sy(y) + 4, "text-anchor": "end", "font-size": 10, fill: "#667085" }, y.toPrecision(3)));
  }
  const xticks = [...new Set([x0, Math.round((x0 + x1) / 2), x1])];
  for (const x of xticks) root.append(svg("text", { x: sx(x), y: H - B + 14, "text-anchor": "middle", "font-size": 10, fill: "#667085" }, fmt(x)));
  root.append(svg("text", { x: (L + W - R) / 2, y: H - B + 27, "text-anchor": "middle", "font-size": 10, fill: "#667085" }, "step"));
  lines.forEach((l, i) => {
    const color = l.color || COLORS[i % COLORS.length];
    const pts = l.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
    root.append(svg("polyline", { points: pts, fill: "none", stroke: color, "stroke-width": 2, class: "series", "data-name": l.name, ...(l.dash ? { "stroke-dasharray": "5 4" } : {}) }));
    for (const [x, y] of l.points) root.append(svg("circle", { cx: sx(x), cy: sy(y), r: 2.5, fill: color }, undefined));
    const lx = L + 8 + (i % 3) * 180, ly = H - 6 - Math.floor(i / 3) * 0;
    root.append(svg("rect", { x: lx, y: ly - 8, width: 10, height: 10, fill: color }));
    root.append(svg("text", { x: lx + 14, y: ly + 1, "font-size": 11, fill: "#1d2330" }, l.name.length > 26 ? `${l.name.slice(0, 25)}…` : l.name));
  });
  box.replaceChildren(root);
}

// ------------------------------------------------------------------ pages

const pages = {};

pages.jobs = async () => {
  const tbody = $("#jobs-table tbody");
  const refresh = async () => {
    const jobs = (await api("GET", "/v1/fine_tuning/jobs?limit=100")).data;
    $("#jobs-empty").hidden = jobs.length > 0;
    const rows = await Promise.all(jobs.map(async (j) => {
      let done = j.status === "succeeded" ? 1 : null;
      if (done === null && !TERMINAL.has(j.status)) {
        const ev = (await api("GET", `/v1/fine_tuning/jobs/${j.id}/events?limit=20`)).data.find((e) => e.type === "metrics");
        if (ev && ev.data.total_steps) done = ev.data.step / ev.data.total_steps;
      }
      const progress = done === null ? "—" : [el("span", { class: "bar" }, el("span", { style: `width:${Math.round(done * 100)}%` })), `${Math.round(done * 100)}%`];
      return el("tr", { "data-job": j.id },
        el("td", {}, el("a", { href: `/ui/jobs/${encodeURIComponent(j.id)}` }, j.id)), el("td", {}, badge(j.status)),
        el("td", {}, j.model), el("td", {}, progress), el("td", {}, j.fine_tuned_model || "—"), el("td", {}, age(j.created_at)));
    }));
    tbody.replaceChildren(...rows);
    if (jobs.some((j) => !TERMINAL.has(j.status))) setTimeout(refresh, 3000);
  };
  await refresh();
};

pages.job = async () => {
  const id = document.body.dataset.jobId, base = `/v1/fine_tuning/jobs/${encodeURIComponent(id)}`;
  const act = (verb) => async () => { try { await api("POST", `${base}/${verb}`); toast(`${verb} requested`); refresh(); } catch (e) { toast(e.message); } };
  $("#btn-pause").addEventListener("click", act("pause"));
  $("#btn-resume").addEventListener("click", act("resume"));
  $("#btn-cancel").addEventListener("click", () => { if (confirm(`Cancel ${id}?`)) act("cancel")(); });
  let timer = null, events = [];
  async function refresh() {
    clearTimeout(timer);
    const [job, evs, ckpts] = await Promise.all([api("GET", base), allEvents(id, events), api("GET", `${base}/checkpoints?limit=100`)]);
    events = evs;
    const status = $("#job-status");
    status.className = `badge ${job.status}`; status.textContent = job.status;
    const tuned = job.fine_tuned_model ? [" · fine-tuned model ", el("code", {}, job.fine_tuned_model), " ", el("a", { href: `/ui/playground?model=${encodeURIComponent(job.fine_tuned_model)}`, id: "try-final" }, "try in playground")] : [];
    $("#job-summary").replaceChildren(`base ${job.model} · file ${job.training_file}${job.validation_file ? ` + ${job.validation_file}` : ""} · created ${age(job.created_at)} ago`, ...tuned);
    $("#job-error").hidden = !job.error;
    if (job.error) $("#job-error").textContent = `${job.error.code}: ${job.error.message}`;
    $("#btn-pause").disabled = !["running", "queued"].includes(job.status);
    $("#btn-resume").disabled = job.status !== "paused";
    $("#btn-cancel").disabled = TERMINAL.has(job.status);
    const rows = metricRows(events);
    lineChart($("#chart-loss"), [{ name: "train loss", points: series(rows, "train_loss") }, { name: "valid loss", points: series(rows, "valid_loss"), dash: true }]);
    lineChart($("#chart-acc"), [{ name: "train token accuracy", points: series(rows, "train_mean_token_accuracy") }, { name: "valid token accuracy", points: series(rows, "valid_mean_token_accuracy"), dash: true }]);
    const method = job.method && job.method[job.method.type];
    const hp = { method: job.method ? job.method.type : "supervised", ...((method && method.hyperparameters) || job.hyperparameters), seed: job.seed, trained_tokens: job.trained_tokens };
    $("#job-hparams").replaceChildren(...Object.entries(hp).filter(([, v]) => v !== null && v !== undefined).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, fmt(v))]));
    $("#ckpt-table tbody").replaceChildren(...ckpts.data.map((c) => el("tr", {},
      el("td", {}, c.step_number), el("td", {}, el("code", {}, c.fine_tuned_model_checkpoint)), el("td", {}, c.metrics.train_loss === null ? "—" : fmt(c.metrics.train_loss)),
      el("td", {}, el("a", { href: `/ui/playground?model=${encodeURIComponent(c.fine_tuned_model_checkpoint)}`, class: "try" }, "try in playground")))));
    $("#job-events").replaceChildren(...events.slice().reverse().map((e) => el("li", { class: e.level },
      el("time", {}, new Date(e.created_at * 1000).toLocaleTimeString()), e.message)));
    if (!TERMINAL.has(job.status)) timer = setTimeout(() => refresh().catch((e) => toast(e.message)), 2000);
  }
  await refresh();
};

pages.new = async () => {
  const models = await api("GET", "/v1/models");
  $("#base-model").replaceChildren(...models.data.filter((m) => m.owned_by === "tunesmith").map((m) => el("option", { value: m.id }, m.id)));
  const files = (await api("GET", "/v1/files?purpose=fine-tune&limit=100")).data;
  const pick = $("#train-file-id"), valid = $("#valid-file-id");
  const option = (f) => el("option", { value: f.id }, `${f.filename} (${f.id})`);
  pick.append(...files.map(option));
  valid.append(...files.map(option));
  $("#train-file").addEventListener("change", async (ev) => {
    const file = ev.target.files[0];
    if (!file) return;
    const problems = $("#upload-problems"), status = $("#upload-status");
    problems.hidden = true; status.textContent = `uploading ${file.name}…`;
    const form = new FormData();
    form.append("purpose", "fine-tune"); form.append("file", file);
    try {
      const f = await api("POST", "/v1/files", form);
      pick.append(option(f));
      valid.append(option(f));
      pick.value = f.id;
      status.textContent = `uploaded ${f.filename} as ${f.id} (${f.bytes} bytes): valid`;
    } catch (e) {
      // the API's message: "<name>: N problem(s): line 3 field x: why; line 7: why ... hint: what to do"
      const [text, hint] = e.message.split(/\s+hint: /);
      const [, list] = text.split(/problem\(s\): /);
      status.textContent = `${file.name} was refused${hint ? ` (${hint})` : ""}:`;
      problems.replaceChildren(...(list ? list.split(/; (?=line \d|\.\.\.)/) : [text]).map((p) => el("li", {}, p)));
      problems.hidden = false;
    }
  });
  $("#new-job").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const err = $("#create-error");
    err.hidden = true;
    try {
      const hyper = {};
      for (const k of ["n_epochs", "batch_size", "learning_rate_multiplier"]) {
        const v = $(`#hp-${k}`).value.trim();
        if (v) hyper[k] = v === "auto" ? "auto" : Number(v);
      }
      const type = $("#method").value;
      const body = { model: $("#base-model").value, training_file: pick.value, method: { type, [type]: { hyperparameters: hyper } } };
      if (!body.training_file) throw new Error("upload a training file or pick one first");
      if (valid.value) body.validation_file = valid.value;
      if ($("#suffix").value.trim()) body.suffix = $("#suffix").value.trim();
      const tc = $("#training-config").value.trim();
      if (tc) {
        try { body.training_config = JSON.parse(tc); } catch (e) { throw new Error(`training_config is not valid JSON: ${e.message}`); }
      }
      const job = await api("POST", "/v1/fine_tuning/jobs", body);
      location.href = `/ui/jobs/${encodeURIComponent(job.id)}`;
    } catch (e) { err.textContent = e.message; err.hidden = false; }
  });
};

pages.compare = async () => {
  const jobs = (await api("GET", "/v1/fine_tuning/jobs?limit=100")).data;
  const wanted = new URLSearchParams(location.search).get("jobs");
  const chosen = new Set(wanted ? wanted.split(",") : jobs.slice(0, 2).map((j) => j.id));
  const cache = {};
  const draw = async () => {
    const metric = $("#compare-metric").value;
    const ids = jobs.map((j) => j.id).filter((id) => chosen.has(id));
    for (const id of ids) if (!cache[id]) cache[id] = metricRows(await allEvents(id));
    lineChart($("#chart-compare"), ids.map((id) => ({ name: `${id} ${(jobs.find((j) => j.id === id) || {}).suffix || ""}`.trim(), color: COLORS[jobs.findIndex((j) => j.id === id) % COLORS.length], points: series(cache[id], metric) })));
    $("#compare-title").textContent = `${$("#compare-metric").selectedOptions[0].textContent} — ${ids.length} job(s)`;
  };
  $("#compare-jobs").replaceChildren(...jobs.map((j, i) => el("li", {}, el("label", { class: "inline" },
    el("input", { type: "checkbox", value: j.id, checked: chosen.has(j.id), onchange: (e) => { e.target.checked ? chosen.add(j.id) : chosen.delete(j.id); draw(); } }),
    el("span", { class: "swatch", style: `background:${COLORS[i % COLORS.length]}` }), `${j.id} `, badge(j.status)))));
  $("#compare-metric").addEventListener("change", draw);
  await draw();
};

async function streamChat(model, messages, options, onDelta) {
  const body = { model, messages, stream: true, max_tokens: options.maxTokens, temperature: options.temperature };
  if (options.format !== "text") body.response_format = { type: options.format };
  const r = await fetch("/v1/chat/completions", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF }, body: JSON.stringify(body) });
  if (!r.ok) { const d = await r.json().catch(() => ({})); throw new Error((d.error && d.error.message) || `${r.status}`); }
  const reader = r.body.getReader(), decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const chunk = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
      for (const line of chunk.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        const obj = JSON.parse(data);
        if (obj.error) throw new Error(obj.error.message);
        const delta = obj.choices && obj.choices[0] && obj.choices[0].delta;
        if (delta && delta.content) onDelta(delta.content);
      }
    }
  }
}

pages.playground = async () => {
  const models = await modelOptions($("#model-options"));
  const params = new URLSearchParams(location.search);
  const bases = models.filter((m) => m.owned_by === "tunesmith").map((m) => m.id);
  $("#model-a").value = params.get("model") || (models[models.length - 1] || {}).id || "";
  $("#model-b").value = params.get("b") || bases[0] || "";
  if (params.get("b")) { $("#side-by-side").checked = true; document.body.classList.add("sbs"); }
  $("#side-by-side").addEventListener("change", (e) => document.body.classList.toggle("sbs", e.target.checked));
  const history = { a: [], b: [] };
  const paneOf = (k) => $(`#pane-${k}`);
  $("#clear").addEventListener("click", () => { history.a = []; history.b = []; for (const k of ["a", "b"]) $(".transcript", paneOf(k)).replaceChildren(); });
  $("#chat-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const prompt = $("#prompt").value.trim();
    if (!prompt) return;
    const options = { maxTokens: Number($("#max-tokens").value) || 64, temperature: Number($("#temperature").value), format: $("#response-format").value };
    const keys = $("#side-by-side").checked ? ["a", "b"] : ["a"];
    $("#send").disabled = true;
    await Promise.all(keys.map(async (k) => {
      const model = $(`#model-${k}`).value.trim();
      const pane = paneOf(k), transcript = $(".transcript", pane);
      $(".pane-model", pane).textContent = model;
      history[k].push({ role: "user", content: prompt });
      transcript.append(el("div", { class: "msg user" }, el("span", { class: "who" }, "user"), prompt));
      const out = el("span", { class: "content" });
      const bubble = el("div", { class: "msg assistant" }, el("span", { class: "who" }, model), out);
      transcript.append(bubble);
      const system = $("#system").value.trim();
      const messages = system ? [{ role: "system", content: system }, ...history[k]] : history[k];
      try {
        await streamChat(model, messages, options, (text) => { out.textContent += text; });
        history[k].push({ role: "assistant", content: out.textContent });
        bubble.dataset.done = "1";
      } catch (e) { bubble.className = "msg error"; out.textContent = e.message; history[k].pop(); }
    }));
    $("#send").disabled = false;
    $("#prompt").value = "";
  });
};

pages.data = async () => {
  const files = (await api("GET", "/v1/files?limit=100")).data;
  $("#files-table tbody").replaceChildren(...files.map((f) => el("tr", {},
    el("td", {}, el("code", {}, f.id)), el("td", {}, f.filename), el("td", {}, f.purpose), el("td", {}, `${f.bytes} B`), el("td", {}, age(f.created_at)),
    el("td", {}, f.purpose === "fine-tune" ? el("button", { type: "button", class: "preview-btn", onclick: () => preview(f) }, "Preview") : ""))));
  async function preview(f) {
    $("#preview").hidden = false;
    $("#preview-file").textContent = f.filename;
    $("#preview-body").replaceChildren(el("p", { class: "muted" }, "rendering…"));
    try {
      const r = await api("GET", `/ui/api/files/${encodeURIComponent(f.id)}/preview?n=3`);
      $("#preview-body").replaceChildren(...r.data.map((ex) => el("div", {},
        el("h3", {}, `line ${ex.line}: ${ex.n_trained} of ${ex.n_tokens} tokens trained`),
        el("pre", { class: "preview" }, ...ex.segments.map(([text, trained]) => (trained ? el("mark", { class: "trained" }, text) : text))))));
    } catch (e) { $("#preview-body").replaceChildren(el("p", { class: "error" }, e.message)); }
  }
};

pages.aliases = async () => {
  const render = async () => {
    const models = await modelOptions($("#model-options"));
    const names = models.filter((m) => m.owned_by.startsWith("alias:")).map((m) => m.id);
    $("#aliases-empty").hidden = names.length > 0;
    const cards = await Promise.all(names.map(async (name) => {
      const a = await api("GET", `/v1/aliases/${encodeURIComponent(name)}`);
      const rollback = el("button", { type: "button", class: "rollback", disabled: a.history.length < 2, onclick: async () => {
        try { await api("POST", `/v1/aliases/${encodeURIComponent(name)}/rollback`); toast(`${name} rolled back`); await render(); } catch (e) { toast(e.message); }
      } }, "Roll back");
      return el("section", { class: "card alias", "data-alias": name },
        el("div", { class: "row" }, el("h2", {}, el("code", {}, name), " → ", el("code", { class: "target" }, a.model)), rollback),
        a.recipe ? el("p", { class: "muted recipe" }, `recipe ${a.recipe.name} on ${a.recipe.model}: ${a.recipe.description}`) : null,
        el("table", { class: "list" }, el("thead", {}, el("tr", {}, ["When", "Action", "From", "To", "By"].map((h) => el("th", {}, h)))),
          el("tbody", {}, a.history.slice().reverse().map((c) => el("tr", {}, el("td", {}, `${age(c.created_at)} ago`), el("td", {}, c.action), el("td", {}, c.from_target || "—"), el("td", {}, c.to_target), el("td", {}, c.actor))))));
    }));
    $("#aliases").replaceChildren(...cards);
  };
  $("#deploy-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("#alias-error").hidden = true;
    try { await api("POST", "/v1/aliases", { name: $("#alias-name").value.trim(), model: $("#alias-model").value.trim() }); await render(); } catch (e) { $("#alias-error").textContent = e.message; $("#alias-error").hidden = false; }
  });
  await render();
};

pages.reports = async () => {
  const rows = (await api("GET", "/ui/api/reports")).data;
  $("#reports-empty").hidden = rows.length > 0;
  const num = (v) => (typeof v === "number" ? v.toFixed(3) : "n/a");
  const href = (id) => `/ui/reports/${id.split("/").map(encodeURIComponent).join("/")}`;
  $("#reports-table tbody").replaceChildren(...rows.map((r) => el("tr", { "data-report": r.id },
    el("td", {}, r.has_html ? el("a", { href: href(r.id), class: "open-report" }, r.id) : r.id),
    el("td", {}, r.created.replace("T", " ").slice(0, 19)),
    el("td", {}, r.test_file, r.n_examples ? el("span", { class: "muted" }, ` · ${r.n_examples} examples`) : ""),
    el("td", {}, el("ul", { class: "cells" }, r.candidates.map((c) => el("li", {}, c.name, el("span", { class: "muted" }, ` (${c.kind})`))))),
    el("td", {}, el("ul", { class: "cells" }, r.candidates.map((c) => el("li", { class: "headline" }, `${r.metric} ${num(c.value)} `,
      el("span", { class: "muted" }, c.value === null ? "" : `[${num(c.low)}, ${num(c.high)}]`))))),
    el("td", { class: r.error ? "verdict error" : "verdict" }, r.error || r.verdict || "—"))));
};

document.addEventListener("DOMContentLoaded", () => {
  const init = pages[document.body.dataset.page];
  // data-ready tells a person's script (and the browser tests) that the page's first load is done
  if (init) init().then(() => { document.body.dataset.ready = "1"; }, (e) => toast(e.message));
});
