// Strata's web UI: explore (PromQL, SQL, LogQL), business processes
// (SLOs), capacity, noisy neighbours, tenants and storage. Plain
// JavaScript served from the binary; every call goes to this server with
// the session's token and tenant. The page's state is in its query
// string, so any view can be shared as a link.
"use strict";

const $ = (sel, root) => (root || document).querySelector(sel);
const TOKEN_KEY = "strata.token";

const app = {
  session: null,
  tenant: null,
  params: new URLSearchParams(location.search),
  timers: [],
};

// ---------------------------------------------------------------- helpers

function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function pct(v, digits = 2) {
  return v === null || v === undefined ? "–" : `${(v * 100).toFixed(digits)}%`;
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

function duration(s) {
  if (s === null || s === undefined) return "–";
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} days`;
}

function labelText(metric) {
  const m = { ...metric };
  const name = m.__name__ || "";
  delete m.__name__;
  const pairs = Object.entries(m).map(([k, v]) => `${k}="${v}"`);
  return pairs.length ? `${name}{${pairs.join(", ")}}` : (name || "{}");
}

function parseRange(text) {
  const m = /^(\d+)([smhdw])$/.exec(text || "");
  if (!m) return 3600e3;
  return Number(m[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 }[m[2]];
}

function setParams(changes, push) {
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined || v === null || v === "") app.params.delete(k);
    else app.params.set(k, v);
  }
  const url = `${location.pathname}?${app.params.toString()}`;
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

function clearTimers() {
  for (const t of app.timers) clearInterval(t);
  app.timers = [];
}

// -------------------------------------------------------------------- API

class Unauthorized extends Error {}

async function call(path, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  if (app.tenant && !opts.noTenant) headers["X-Scope-OrgID"] = opts.tenant || app.tenant;
  const resp = await fetch(path, { ...opts, headers });
  if (resp.status === 401) {
    const text = await resp.text();
    throw new Unauthorized(message(text) || "authentication required");
  }
  return resp;
}

function message(text) {
  try {
    const j = JSON.parse(text);
    return j.error || j.message || text;
  } catch (_) {
    return text.trim();
  }
}

async function api(path, opts) {
  const resp = await call(path, opts);
  const text = await resp.text();
  if (!resp.ok) throw new Error(`${resp.status}: ${message(text)}`);
  const j = JSON.parse(text);
  if (j.status && j.status !== "success") throw new Error(j.error || text);
  return j.data !== undefined ? j.data : j;
}

function get(path, params, opts) {
  const q = new URLSearchParams(params || {}).toString();
  return api(q ? `${path}?${q}` : path, opts);
}

function errorBox(e) {
  return h("p", { class: "error", role: "alert" }, e.message || String(e));
}

// ------------------------------------------------------------------ login

function showLogin(reason) {
  const dlg = $("#login");
  const err = $("#login-error");
  err.hidden = !reason;
  err.textContent = reason || "";
  if (!dlg.open) dlg.showModal();
  $("#token").focus();
}

async function boot() {
  $("#login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("#token").value.trim());
    $("#login").close();
    boot();
  });
  $("#logout").onclick = () => { sessionStorage.removeItem(TOKEN_KEY); location.reload(); };
  try {
    app.session = await get("/api/v1/status/session", {}, { noTenant: true });
  } catch (e) {
    if (e instanceof Unauthorized) {
      const had = sessionStorage.getItem(TOKEN_KEY);
      sessionStorage.removeItem(TOKEN_KEY);
      $("#main").replaceChildren(h("p", { class: "muted" }, "Sign in to see this server's data."));
      showLogin(had ? e.message : "");
      return;
    }
    $("#main").replaceChildren(errorBox(e));
    return;
  }
  const s = app.session;
  $("#logout").hidden = !s.auth;
  const wanted = app.params.get("tenant");
  app.tenant = s.tenants.includes(wanted) ? wanted : s.tenant;
  const sel = $("#tenant");
  sel.replaceChildren(...s.tenants.map((t) => h("option", { value: t, selected: t === app.tenant }, t)));
  sel.disabled = s.tenants.length < 2;
  sel.onchange = () => { setParams({ tenant: sel.value }, true); route(); };
  for (const a of document.querySelectorAll("#nav a")) {
    a.addEventListener("click", (ev) => {
      ev.preventDefault();
      app.params = new URLSearchParams({ page: a.dataset.page, tenant: app.tenant });
      setParams({}, true);
      route();
    });
  }
  window.addEventListener("popstate", () => { app.params = new URLSearchParams(location.search); route(); });
  route();
}

const PAGES = {};

function route() {
  clearTimers();
  app.params = new URLSearchParams(location.search);
  const wanted = app.params.get("tenant");
  if (wanted && app.session.tenants.includes(wanted)) app.tenant = wanted;
  $("#tenant").value = app.tenant;
  const page = app.params.get("page") || "explore";
  const nav = page === "process" ? "processes" : page;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === nav);
  const main = $("#main");
  main.replaceChildren();
  (PAGES[page] || PAGES.explore)(main).catch((e) => {
    if (e instanceof Unauthorized) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(e.message);
    } else {
      main.append(errorBox(e));
    }
  });
}

// ---------------------------------------------------------------- explore

const LANGS = { promql: "PromQL", sql: "SQL", logql: "LogQL" };
const RANGES = ["5m", "15m", "1h", "3h", "6h", "12h", "24h", "2d", "7d", "30d"];
const EXAMPLES = {
  promql: "sum by (job) (rate(http_requests_total[5m]))",
  sql: "SELECT metric, count(*) AS series FROM series GROUP BY metric ORDER BY series DESC LIMIT 20",
  logql: '{job=~".+"}',
};

function historyOf(lang) {
  try { return JSON.parse(localStorage.getItem(`strata.history.${lang}`)) || []; } catch (_) { return []; }
}

function remember(lang, q) {
  const list = [q, ...historyOf(lang).filter((x) => x !== q)].slice(0, 20);
  localStorage.setItem(`strata.history.${lang}`, JSON.stringify(list));
}

// The time span a query covers: a fixed one after a zoom (from/to), else
// the last `range` up to now.
function span() {
  const from = Number(app.params.get("from")), to = Number(app.params.get("to"));
  if (from && to && to > from) return [from, to, true];
  const end = Date.now();
  return [end - parseRange(app.params.get("range") || "1h"), end, false];
}

function stepFor(start, end, points = 500) {
  return Math.max(1, Math.ceil((end - start) / 1000 / points));
}

PAGES.explore = async (main) => {
  const lang = LANGS[app.params.get("lang")] ? app.params.get("lang") : "promql";
  const q = app.params.get("q") || "";
  const mode = app.params.get("mode") || "range";
  const tabs = h("div", { class: "tabs row" },
    Object.entries(LANGS).map(([k, name]) => h("button", {
      type: "button", class: k === lang ? "active" : "", "data-lang": k,
      onclick: () => { setParams({ lang: k, q: "", from: "", to: "" }, true); route(); },
    }, name)));
  const input = h("textarea", { id: "query", spellcheck: "false", placeholder: EXAMPLES[lang], "aria-label": "query" });
  input.value = q;
  const editor = h("div", { class: "editor" }, input);
  const rangeSel = h("select", { id: "range", "aria-label": "time range" },
    RANGES.map((r) => h("option", { value: r, selected: r === (app.params.get("range") || "1h") }, `last ${r}`)));
  const [, , zoomed] = span();
  const modeSel = lang === "promql" ? h("select", { id: "mode", "aria-label": "query type" },
    h("option", { value: "range", selected: mode === "range" }, "Range"),
    h("option", { value: "instant", selected: mode === "instant" }, "Instant")) : null;
  const live = lang === "logql" ? h("label", {}, h("input", { type: "checkbox", id: "live", checked: app.params.get("live") === "1" }), " Live") : null;
  const run = h("button", { type: "submit", class: "primary", id: "run" }, "Run");
  const out = h("div", { id: "result" });
  const hist = h("ul", { class: "history", id: "history" },
    historyOf(lang).slice(0, 8).map((x) => h("li", { title: x, onclick: () => { input.value = x; go(); } }, x)));
  const form = h("form", { class: "card" }, tabs, h("div", { class: "row" }, editor),
    h("div", { class: "row" }, run, modeSel, lang !== "sql" ? rangeSel : null,
      zoomed ? h("button", { type: "button", id: "unzoom", onclick: () => { setParams({ from: "", to: "" }); go(); } }, "Back to last " + (app.params.get("range") || "1h")) : null,
      live, h("span", { class: "muted", id: "took" })),
    hist);
  main.append(h("h1", {}, "Explore"), form, out);

  function go() {
    const text = input.value.trim();
    if (!text) return;
    setParams({ q: text, lang, range: rangeSel.value, mode: modeSel ? modeSel.value : "" }, false);
    remember(lang, text);
    execute(lang, text, out).catch((e) => {
      if (e instanceof Unauthorized) { sessionStorage.removeItem(TOKEN_KEY); showLogin(e.message); return; }
      out.replaceChildren(errorBox(e));
    });
  }
  form.addEventListener("submit", (ev) => { ev.preventDefault(); go(); });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey || ev.shiftKey)) { ev.preventDefault(); go(); }
  });
  rangeSel.onchange = () => { setParams({ from: "", to: "" }); go(); };
  if (modeSel) modeSel.onchange = go;
  if (live) {
    live.querySelector("input").onchange = (ev) => {
      setParams({ live: ev.target.checked ? "1" : "" });
      clearTimers();
      if (ev.target.checked) app.timers.push(setInterval(() => { if (!span()[2]) go(); }, 5000));
    };
    if (app.params.get("live") === "1") app.timers.push(setInterval(() => { if (!span()[2]) go(); }, 5000));
  }
  if (lang !== "sql") autocomplete(input, editor, lang);
  if (q) go();
};

async function execute(lang, text, out) {
  const started = performance.now();
  out.replaceChildren(h("p", { class: "loading" }, "Running…"));
  const zoom = (t0, t1) => { setParams({ from: t0, to: t1 }, true); route(); };
  const [start, end] = span();
  if (lang === "promql") {
    if ((app.params.get("mode") || "range") === "instant") {
      const data = await get("/api/v1/query", { query: text, time: end / 1000 });
      out.replaceChildren(h("div", { class: "card" }, promTable(data)));
    } else {
      const step = stepFor(start, end);
      const data = await get("/api/v1/query_range", { query: text, start: start / 1000, end: end / 1000, step });
      out.replaceChildren(h("div", { class: "card" }, matrixChart(data.result, step, zoom, start, end)));
    }
  } else if (lang === "sql") {
    const data = await api("/api/v1/sql", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ query: text }),
    });
    out.replaceChildren(sqlResult(text, data));
  } else {
    await logResult(text, start, end, out, zoom);
  }
  $("#took").textContent = `${Math.round(performance.now() - started)} ms`;
}

function matrixChart(result, step, zoom, start, end) {
  const box = h("div", { class: "plot-box" });
  const series = result.map((s) => ({
    name: labelText(s.metric),
    step: step * 1000,
    points: s.values.map(([t, v]) => [t * 1000, Number(v)]),
  }));
  requestAnimationFrame(() => Chart.line(box, { series, onZoom: zoom, xMin: start, xMax: end }));
  return h("div", {}, box, h("p", { class: "muted" }, `${series.length} series, step ${step}s`));
}

function promTable(data) {
  const rows = [];
  if (data.resultType === "vector") for (const s of data.result) rows.push([labelText(s.metric), s.value[1]]);
  else if (data.resultType === "scalar" || data.resultType === "string") rows.push(["scalar", data.result[1]]);
  else if (data.resultType === "matrix") for (const s of data.result) rows.push([labelText(s.metric), s.values.map((v) => v[1]).join(", ")]);
  return h("table", { id: "instant" },
    h("thead", {}, h("tr", {}, h("th", {}, "series"), h("th", { class: "num" }, "value"))),
    h("tbody", {}, rows.map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", { class: "num" }, v)))),
  );
}

const NUMERIC = /^(Int|UInt|Float|Decimal)/;

function sqlResult(text, data) {
  const cols = data.columns || [];
  const rows = data.rows || [];
  const shown = rows.slice(0, 1000);
  const csv = h("button", { type: "button", id: "csv", onclick: () => downloadCsv(text) }, "Download CSV");
  const table = h("table", { id: "sql-table" },
    h("thead", {}, h("tr", {}, cols.map((c) => h("th", { class: NUMERIC.test(c.type) ? "num" : "" }, c.name)))),
    h("tbody", {}, shown.map((r) => h("tr", {}, r.map((v, i) => h("td", { class: NUMERIC.test(cols[i].type) ? "num" : "" },
      v === null ? "NULL" : typeof v === "object" ? JSON.stringify(v) : String(v)))))));
  const card = h("div", { class: "card" },
    h("div", { class: "row" }, h("span", { class: "muted" }, `${rows.length} rows${rows.length > shown.length ? ` (first ${shown.length} shown)` : ""}`), csv));
  // A chart when there is a time column and numbers: one line per numeric
  // column and text-column combination.
  const time = cols.findIndex((c) => c.type.startsWith("Timestamp"));
  const nums = cols.map((c, i) => (NUMERIC.test(c.type) ? i : -1)).filter((i) => i >= 0);
  if (time >= 0 && nums.length && rows.length) {
    const keys = cols.map((c, i) => (i !== time && !NUMERIC.test(c.type) ? i : -1)).filter((i) => i >= 0);
    const by = new Map();
    for (const r of rows) {
      const t = Date.parse(r[time]);
      if (Number.isNaN(t)) continue;
      const key = keys.map((i) => `${cols[i].name}=${r[i]}`).join(", ");
      for (const n of nums) {
        const name = nums.length > 1 || !key ? (key ? `${cols[n].name} {${key}}` : cols[n].name) : key;
        if (!by.has(name)) by.set(name, []);
        by.get(name).push([t, typeof r[n] === "number" ? r[n] : Number(r[n])]);
      }
    }
    const series = [...by.entries()].map(([name, points]) => ({ name, points: points.sort((a, b) => a[0] - b[0]) }));
    const box = h("div", { class: "plot-box", id: "sql-chart" });
    card.append(box);
    requestAnimationFrame(() => Chart.line(box, { series }));
  }
  card.append(table);
  return card;
}

async function downloadCsv(text) {
  const resp = await call("/api/v1/sql", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ query: text, format: "csv" }),
  });
  if (!resp.ok) { alert(message(await resp.text())); return; }
  const url = URL.createObjectURL(await resp.blob());
  const a = h("a", { href: url, download: "strata.csv" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function logResult(text, start, end, out, zoom) {
  const step = stepFor(start, end, 120);
  const params = { query: text, start: `${start}000000`, end: `${end}000000`, limit: 1000, direction: "backward", step: `${step}s` };
  const data = await get("/loki/api/v1/query_range", params);
  if (data.resultType === "matrix") {
    out.replaceChildren(h("div", { class: "card" }, matrixChart(data.result, step, zoom, start, end)));
    return;
  }
  if (data.resultType === "vector") {
    out.replaceChildren(h("div", { class: "card" }, promTable(data)));
    return;
  }
  const entries = [];
  for (const s of data.result) for (const [ns, line] of s.values) entries.push([ns, line, s.stream]);
  entries.sort((a, b) => (a[0] < b[0] ? 1 : a[0] > b[0] ? -1 : 0));
  const volume = h("div", { class: "plot-box", id: "volume" });
  const list = h("div", { class: "logs", id: "log-lines" }, entries.slice(0, 1000).map(([ns, line, stream]) => h("div", { class: "entry" },
    h("span", { class: "muted" }, Chart.fullTime(Number(ns.slice(0, -6)))),
    h("div", {}, h("div", { class: "line" }, line), h("div", { class: "labels" }, labelText(stream))))));
  out.replaceChildren(h("div", { class: "card" }, h("p", { class: "muted", id: "log-count" }, `${entries.length} lines (newest first, at most 1000)`), volume, list));
  // The volume above the lines: the same query counted per step.
  try {
    const counted = await get("/loki/api/v1/query_range", {
      query: `sum(count_over_time(${text} [${step}s]))`, start: params.start, end: params.end, step: `${step}s`,
    });
    const points = (counted.result[0] || { values: [] }).values.map(([t, v]) => [t * 1000, Number(v)]);
    Chart.bars(volume, points, step * 1000);
  } catch (e) {
    volume.replaceChildren(h("p", { class: "muted" }, `volume: ${e.message}`));
  }
}

// Suggestions for the word at the cursor: metric names, label names
// inside braces, label values after `label=` ("…).
function autocomplete(input, editor, lang) {
  const base = lang === "logql" ? "/loki/api/v1" : "/api/v1";
  const cache = new Map();
  const fetchList = async (path) => {
    if (!cache.has(path)) cache.set(path, get(`${base}${path}`).catch(() => []));
    return cache.get(path);
  };
  const box = h("ul", { class: "suggest", id: "suggest", hidden: true });
  editor.append(box);
  let items = [], on = 0, ctx = null, asked = 0, blurTimer = null;
  const close = () => { box.hidden = true; items = []; box.replaceChildren(); };
  const render = () => {
    box.replaceChildren(...items.map((it, i) => h("li", { class: i === on ? "on" : "", onmousedown: (ev) => { ev.preventDefault(); pick(i); } }, it)));
    box.hidden = !items.length;
  };
  const pick = (i) => {
    const it = items[i];
    if (it === undefined || !ctx) return;
    const before = input.value.slice(0, ctx.from), after = input.value.slice(input.selectionStart);
    input.value = before + it + after;
    const pos = before.length + it.length;
    input.setSelectionRange(pos, pos);
    close();
  };
  input.addEventListener("input", async () => {
    const mine = ++asked;
    const text = input.value.slice(0, input.selectionStart);
    let m, list;
    if ((m = /([a-zA-Z_][\w.]*)\s*(=~|!~|!=|=)\s*"([^"]*)$/.exec(text))) {
      ctx = { from: text.length - m[3].length, prefix: m[3] };
      list = await fetchList(`/label/${encodeURIComponent(m[1])}/values`);
    } else if ((m = /([a-zA-Z_:][\w:.]*)$/.exec(text))) {
      ctx = { from: text.length - m[1].length, prefix: m[1] };
      const inBraces = text.lastIndexOf("{") > text.lastIndexOf("}");
      if (inBraces || lang === "logql") list = await fetchList("/labels");
      else list = [...await fetchList("/label/__name__/values"), ...await fetchList("/labels")];
    } else { close(); return; }
    // A later keystroke's answer wins, whichever list arrives first.
    if (mine !== asked) return;
    const p = ctx.prefix.toLowerCase();
    items = [...new Set(list)].filter((x) => x.toLowerCase().startsWith(p) && x !== ctx.prefix).slice(0, 12);
    on = 0;
    render();
  });
  input.addEventListener("keydown", (ev) => {
    if (box.hidden) return;
    if (ev.key === "ArrowDown") { on = (on + 1) % items.length; render(); ev.preventDefault(); }
    else if (ev.key === "ArrowUp") { on = (on + items.length - 1) % items.length; render(); ev.preventDefault(); }
    else if (ev.key === "Tab" || (ev.key === "Enter" && !ev.ctrlKey && !ev.shiftKey && !ev.metaKey)) { pick(on); ev.preventDefault(); }
    else if (ev.key === "Escape") close();
  });
  input.addEventListener("blur", () => { blurTimer = setTimeout(close, 150); });
  input.addEventListener("focus", () => clearTimeout(blurTimer));
}

// ------------------------------------------------------ business processes

// The analytics pages evaluate at `time` (Unix ms) when the URL names one
// (a shared link shows what its sender saw), else now.
function evalAt() {
  const t = Number(app.params.get("time"));
  return t > 0 ? t : Date.now();
}

// A link to another page of the same tenant (and instant, if fixed).
function link(params) {
  const q = new URLSearchParams({ ...params, tenant: app.tenant });
  if (app.params.get("time")) q.set("time", app.params.get("time"));
  return `?${q.toString()}`;
}

function atParams(extra) {
  const t = Number(app.params.get("time"));
  return t > 0 ? { ...extra, time: t / 1000 } : { ...(extra || {}) };
}

function budgetClass(b) {
  if (b === null || b === undefined) return "";
  return b <= 0 ? "bad" : b < 0.25 ? "warn" : "good";
}

function firing(s) {
  return s.alerts.filter((a) => a.firing);
}

PAGES.processes = async (main) => {
  main.append(h("h1", {}, "Business processes"));
  const slos = await get("/api/v1/slo", atParams());
  if (!slos.length) {
    main.append(h("p", { class: "muted" }, "No SLOs for this tenant. Add [[slo]] entries to the spec file (docs/SLO.md) or through /api/v1/specs."));
    return;
  }
  const groups = new Map();
  for (const s of slos) {
    const bp = s.business_process || "(no process)";
    if (!groups.has(bp)) groups.set(bp, []);
    groups.get(bp).push(s);
  }
  const cards = h("div", { class: "grid-cards", id: "processes" });
  for (const [bp, list] of [...groups.entries()].sort()) {
    const budgets = list.map((s) => s.error_budget_remaining).filter((b) => b !== null);
    const worst = budgets.length ? Math.min(...budgets) : null;
    const alerts = list.flatMap(firing);
    cards.append(h("div", { class: "card process", "data-process": bp },
      h("h2", {}, h("a", { href: link({ page: "process", bp }) }, bp)),
      h("div", { class: "row" },
        h("span", { class: "kpi" }, pct(worst, 1)), h("span", { class: "muted" }, "lowest error budget left"),
        h("span", { class: `pill ${alerts.length ? "bad" : "good"}` }, alerts.length ? `${alerts.length} alert${alerts.length > 1 ? "s" : ""} firing` : "no alerts")),
      sloTable(list)));
  }
  main.append(cards);
};

function sloTable(list) {
  return h("table", { class: "slos" },
    h("thead", {}, h("tr", {}, ["SLO", "SLI", "objective", "budget left", "burn 1h", "burn 6h", "alerts"].map((c, i) => h("th", { class: i ? "num" : "" }, c)))),
    h("tbody", {}, list.map((s) => h("tr", { "data-slo": s.name, "data-labels": JSON.stringify(s.labels) },
      h("td", {}, s.name, Object.keys(s.labels).length ? h("div", { class: "muted" }, labelText(s.labels)) : null),
      h("td", { class: "num" }, pct(s.sli, 3)),
      h("td", { class: "num" }, pct(s.objective, 2)),
      h("td", { class: "num budget" }, h("span", { class: `pill ${budgetClass(s.error_budget_remaining)}` }, pct(s.error_budget_remaining, 1))),
      h("td", { class: "num" }, Chart.num(s.burn_rates["1h"])),
      h("td", { class: "num" }, Chart.num(s.burn_rates["6h"])),
      h("td", { class: "num" }, firing(s).map((a) => h("span", { class: "pill bad" }, `${a.severity} ${a.long_window}/${a.short_window}`)))))));
}

function selector(labels) {
  return Object.entries(labels).map(([k, v]) => `${k}="${String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`).join(",");
}

PAGES.process = async (main) => {
  const bp = app.params.get("bp") || "";
  main.append(h("p", {}, h("a", { href: link({ page: "processes" }) }, "← all processes")), h("h1", {}, `Process: ${bp}`));
  const slos = (await get("/api/v1/slo", atParams())).filter((s) => (s.business_process || "(no process)") === bp);
  if (!slos.length) { main.append(h("p", { class: "muted" }, "No SLOs for this process.")); return; }
  main.append(h("div", { class: "card" }, sloTable(slos)));
  let specs = null;
  try { specs = (await get("/api/v1/specs")).slo || []; } catch (_) { specs = []; }
  const end = evalAt();
  for (const s of slos) {
    const sel = selector({ slo: s.name, ...s.labels });
    const window = parseRange(s.window);
    const card = h("div", { class: "card slo-detail", "data-slo": s.name });
    main.append(card);
    card.append(h("h2", {}, `${s.name} ${Object.keys(s.labels).length ? labelText(s.labels) : ""}`),
      h("p", { class: "muted" }, `objective ${pct(s.objective)} over ${s.window}; budget left ${pct(s.error_budget_remaining, 1)}`));
    const burn = h("div", { class: "plot-box burndown" });
    card.append(h("h3", {}, "Error budget left over the window"), burn);
    // Steps end exactly now (the newest recording is within reach).
    const step = stepFor(end - window, end, 400);
    const start = end - Math.ceil(window / 1000 / step) * step * 1000;
    const budget = await get("/api/v1/query_range", { query: `strata_slo_error_budget_remaining{${sel}}`, start: start / 1000, end: end / 1000, step });
    Chart.line(burn, {
      series: budget.result.map((r) => ({ name: "budget left", step: step * 1000, points: r.values.map(([t, v]) => [t * 1000, Number(v)]) })),
      hlines: [{ y: 0, label: "budget spent" }], xMin: start, xMax: end,
    });
    // The SLO's own queries over the last 6 hours, as 5m rates.
    const spec = specs.find((x) => x.name === s.name);
    const signals = [];
    if (spec && spec.good && spec.total) {
      const grouped = (q) => q.replaceAll("$window", "5m");
      signals.push(["good events/s (the SLO's query)", grouped(spec.good)], ["total events/s (the SLO's query)", grouped(spec.total)]);
    } else {
      signals.push(["good events/s (recorded)", `strata_slo_good_rate5m{${sel}}`], ["total events/s (recorded)", `strata_slo_total_rate5m{${sel}}`]);
    }
    signals.push(["burn rate 1h and 6h", `strata_slo_burn_rate{${sel},window=~"1h|6h"}`]);
    for (const [title, query] of signals) {
      const box = h("div", { class: "plot-box signal" });
      card.append(h("h3", {}, title), h("code", { class: "muted" }, query), box);
      const step6 = stepFor(end - 6 * 3600e3, end, 360);
      try {
        const r = await get("/api/v1/query_range", { query, start: (end - 6 * 3600e3) / 1000, end: end / 1000, step: step6 });
        Chart.line(box, { series: r.result.map((x) => ({ name: labelText(x.metric), step: step6 * 1000, points: x.values.map(([t, v]) => [t * 1000, Number(v)]) })) });
      } catch (e) { box.append(errorBox(e)); }
    }
  }
};

// --------------------------------------------------------------- capacity

PAGES.capacity = async (main) => {
  main.append(h("h1", {}, "Capacity"), h("p", { class: "muted" }, "Resources ranked by time to exhaustion: history, the fitted forecast and its 95% band up to the limit."));
  const list = await get("/api/v1/capacity", atParams({ detail: "true" }));
  if (!list.length) { main.append(h("p", { class: "muted" }, "No capacity specs for this tenant (docs/CAPACITY.md).")); return; }
  main.append(h("table", { id: "capacity-table", class: "card" },
    h("thead", {}, h("tr", {}, ["#", "resource", "status", "current", "limit", "utilisation", "trend/day", "exhaustion", "95% band"].map((c) => h("th", {}, c)))),
    h("tbody", {}, list.map((f) => h("tr", { "data-name": f.name },
      h("td", {}, f.rank), h("td", {}, f.name, h("div", { class: "muted" }, labelText(f.labels))),
      h("td", {}, h("span", { class: `pill ${f.status === "exhausted" ? "bad" : f.status === "forecast" ? "warn" : ""}` }, f.status)),
      h("td", { class: "num" }, Chart.num(f.current)), h("td", { class: "num" }, Chart.num(f.limit)),
      h("td", { class: "num" }, pct(f.utilisation, 1)), h("td", { class: "num" }, Chart.num(f.trend_per_day)),
      h("td", { class: "exhaustion", "data-seconds-left": f.seconds_left ?? "" }, f.exhaustion_ms ? `${Chart.fullTime(f.exhaustion_ms)} (${duration(f.seconds_left)})` : "–"),
      h("td", {}, f.earliest_ms ? `${Chart.fullTime(f.earliest_ms).slice(0, 10)} – ${f.latest_ms ? Chart.fullTime(f.latest_ms).slice(0, 10) : "beyond horizon"}` : "–"))))));
  for (const f of list) {
    const box = h("div", { class: "plot-box forecast" });
    main.append(h("div", { class: "card", "data-name": f.name }, h("h2", {}, `${f.rank}. ${f.name} ${labelText(f.labels)}`), box));
    const chart = f.chart || { history: [], forecast: [] };
    Chart.line(box, {
      series: [
        { name: "usage", points: chart.history },
        { name: "forecast", points: chart.forecast.map(([t, v]) => [t, v]) },
      ],
      bands: [{ name: "95% band", points: chart.forecast.map(([t, , lo, hi]) => [t, lo, hi]) }],
      hlines: f.limit !== null && f.limit !== undefined ? [{ y: f.limit, label: `limit ${Chart.num(f.limit)}` }] : [],
    });
  }
};

// ------------------------------------------------------------- neighbours

function neighbourCard(r, id) {
  const box = h("div", { class: "plot-box shares" });
  const card = h("div", { class: "card neighbours", id, "data-name": r.name },
    h("h2", {}, r.name),
    h("p", { class: "muted" }, `by ${r.by}, window ${r.window} against a ${r.baseline} baseline; `,
      r.contention ? h("span", { class: "pill bad" }, `contention in ${r.contention_steps} of ${r.window_steps} steps`) : h("span", { class: "pill good" }, "no contention"),
      r.utilisation !== null && r.utilisation !== undefined ? ` utilisation ${pct(r.utilisation, 1)}` : ""),
    h("table", {}, h("thead", {}, h("tr", {}, ["#", r.by, "blame", "share", "baseline share", "ratio", "z-score"].map((c) => h("th", {}, c)))),
      h("tbody", {}, r.workloads.map((w) => h("tr", { "data-workload": w.workload },
        h("td", {}, w.rank), h("td", {}, w.workload), h("td", { class: "num blame" }, pct(w.blame, 1)),
        h("td", { class: "num" }, pct(w.share, 1)), h("td", { class: "num" }, pct(w.baseline_share, 1)),
        h("td", { class: "num" }, Chart.num(w.ratio)), h("td", { class: "num" }, Chart.num(w.z_score)))))),
    h("h3", {}, "Share over the window (contention shaded)"), box);
  const steps = r.contention_series || [];
  const stepMs = steps.length > 1 ? Math.min(...steps.slice(1).map((t, i) => t - steps[i])) : 60e3;
  requestAnimationFrame(() => Chart.line(box, {
    stacked: true, yMin: 0, yMax: 1,
    series: r.workloads.map((w) => ({ name: w.workload, points: w.share_series || [] })),
    shade: steps.map((t) => [t - stepMs / 2, t + stepMs / 2]),
  }));
  return card;
}

PAGES.neighbours = async (main) => {
  main.append(h("h1", {}, "Noisy neighbours"));
  const reports = await get("/api/v1/neighbours", atParams({ series: "true" }));
  if (!reports.length) main.append(h("p", { class: "muted" }, "No neighbours specs for this tenant (docs/CAPACITY.md)."));
  reports.forEach((r, i) => main.append(neighbourCard(r, `neighbours-${i}`)));
  // Strata's own usage by tenant: the usage tenant's data.
  const usageTenant = app.session.usage_tenant;
  if (usageTenant && (!app.session.auth || app.session.tenant === usageTenant)) {
    main.append(h("h2", {}, "Strata's own load by tenant"));
    const holder = h("div", {});
    main.append(holder);
    for (const resource of ["query_seconds", "samples_ingested"]) {
      try {
        const r = await get("/api/v1/neighbours/usage", atParams({ resource, series: "true" }), { tenant: usageTenant });
        holder.append(neighbourCard(r[0] || r, `usage-${resource}`));
      } catch (e) { holder.append(errorBox(e)); }
    }
  }
};

// ---------------------------------------------------------------- tenants

function meter(used, limit) {
  if (!limit) return h("span", {}, String(used), h("span", { class: "muted" }, " (no limit)"));
  const share = used / limit;
  const m = h("div", { class: `bar-meter ${share >= 0.9 ? "bad" : share >= 0.7 ? "warn" : ""}`, title: `${used} of ${limit}` }, h("span"));
  m.firstChild.style.width = `${Math.min(100, share * 100)}%`;
  return h("div", {}, m, h("span", { class: "muted" }, `${used} / ${limit} (${pct(share, 0)})`));
}

PAGES.tenants = async (main) => {
  main.append(h("h1", {}, "Tenants and storage"),
    h("p", { class: "muted" }, "Refreshed every 10 seconds; ingest rates are measured between refreshes (or read from Strata's own usage recordings when this token may read them)."));
  const body = h("div", { id: "tenants" });
  main.append(body);
  let previous = null;
  const refresh = async () => {
    const data = await get("/api/v1/status/tenants");
    const now = Date.now();
    // Ingest rates: the usage tenant's recordings when readable, else the
    // counters' change since the last refresh.
    const rates = new Map();
    const usageTenant = app.session.usage_tenant;
    if (usageTenant && (!app.session.auth || app.session.tenant === usageTenant)) {
      try {
        const r = await get("/api/v1/query", { query: "rate(strata_tenant_samples_ingested_total[5m])" }, { tenant: usageTenant });
        for (const x of r.result) rates.set(x.metric.tenant, Number(x.value[1]));
      } catch (_) { /* no recordings yet */ }
    }
    if (previous) {
      for (const t of data.tenants) {
        const before = previous.data.tenants.find((x) => x.tenant === t.tenant);
        if (before && !rates.has(t.tenant)) rates.set(t.tenant, (t.samples_ingested - before.samples_ingested) / ((now - previous.at) / 1000));
      }
    }
    previous = { data, at: now };
    body.replaceChildren(tenantsView(data, rates));
  };
  await refresh();
  app.timers.push(setInterval(() => refresh().catch((e) => body.replaceChildren(errorBox(e))), 10000));
};

function tenantsView(data, rates) {
  const view = h("div", {});
  if (data.wal) {
    view.append(h("div", { class: "card", id: "wal" }, h("h2", {}, "Write-ahead log"),
      h("p", {}, `${bytes(data.wal.bytes)} in ${data.wal.segments} segments, last record ${data.wal.last_seq ?? "–"}`,
        data.wal.poisoned ? h("span", { class: "pill bad" }, " failed: restart to recover") : "")));
  }
  const table = h("table", { class: "card", id: "tenants-table" },
    h("thead", {}, h("tr", {}, ["tenant", "ingest", "active series", "log streams", "refused by limit", "stored", "files by level", "compaction lag", "retention"].map((c) => h("th", {}, c)))),
    h("tbody", {}));
  for (const t of data.tenants) {
    const l = t.limits;
    const rej = Object.entries(t.rejected || {});
    const levels = (s) => Object.entries(s.levels).map(([k, v]) => `${k}: ${v.files} (${bytes(v.bytes)})`).join(", ") || "–";
    const rate = rates.get(t.tenant);
    table.tBodies[0].append(h("tr", { "data-tenant": t.tenant },
      h("td", {}, t.tenant),
      h("td", {}, rate === undefined ? h("span", { class: "muted" }, "rate: measuring…") : l.ingest_rate ? meter(Math.round(rate), l.ingest_rate) : `${Chart.num(rate)} samples/s`,
        h("div", { class: "muted" }, `${t.samples_ingested} samples, ${t.log_entries_ingested} log lines since start`)),
      h("td", {}, meter(t.live_series ?? t.head_series, l.max_series)),
      h("td", {}, meter(t.live_streams ?? t.head_streams, l.max_streams)),
      h("td", { class: "rejected" }, rej.length ? rej.map(([k, v]) => h("div", {}, `${k}: ${v}`)) : "none"),
      h("td", {}, `metrics ${bytes(t.metrics.bytes)}, ${t.metrics.rows} samples`, h("div", { class: "muted" }, `logs ${bytes(t.logs.bytes)}, ${t.logs.rows} entries`)),
      h("td", {}, levels(t.metrics), h("div", { class: "muted" }, levels(t.logs))),
      h("td", {}, duration(t.metrics.compaction_lag_seconds), h("div", { class: "muted" }, duration(t.logs.compaction_lag_seconds))),
      h("td", {}, t.retention.period_seconds ? duration(t.retention.period_seconds) : "forever",
        t.retention.legal_hold ? h("span", { class: "pill warn" }, "legal hold") : null)));
  }
  view.append(table, h("h2", {}, "Limits in force"),
    h("p", { class: "muted" }, "0 is no limit. Set in [limits.tenant_defaults] and the overrides file (README, tenant limits)."),
    h("div", { class: "grid-cards" }, data.tenants.map((t) => h("div", { class: "card" }, h("h3", {}, t.tenant),
      h("table", {}, h("tbody", {}, Object.entries(t.limits).filter(([, v]) => typeof v !== "object").map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", { class: "num" }, String(v))))))))));
  return view;
}

document.addEventListener("DOMContentLoaded", boot);
