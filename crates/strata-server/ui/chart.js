// Strata's charts: SVG drawn here, no library. A line chart (series,
// bands, horizontal lines, shaded spans, stacking, hover values, drag to
// zoom) and a bar chart. Each series' path carries data-name and
// data-points so a test can check what was drawn against the API.
"use strict";

const Chart = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#2f6fdf", "#e4572e", "#29a36a", "#a05eb5", "#f0a202",
    "#17a2b8", "#d63384", "#6c757d", "#8c6d1f", "#3d5a80"];
  const M = { left: 64, right: 16, top: 12, bottom: 28 };

  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (parent) parent.appendChild(e);
    return e;
  }

  function color(i) { return PALETTE[i % PALETTE.length]; }

  // Round tick steps: 1, 2, 5 × 10^k.
  function niceStep(span, count) {
    const raw = span / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  }

  const TIME_STEPS = [1e3, 5e3, 15e3, 30e3, 60e3, 300e3, 900e3, 1800e3, 3600e3,
    3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 86400e3, 2 * 86400e3, 7 * 86400e3,
    14 * 86400e3, 30 * 86400e3, 90 * 86400e3, 365 * 86400e3];

  function timeStep(span, count) {
    const want = span / Math.max(1, count);
    return TIME_STEPS.find((s) => s >= want) || TIME_STEPS[TIME_STEPS.length - 1];
  }

  function pad(n) { return String(n).padStart(2, "0"); }

  function timeLabel(t, step) {
    const d = new Date(t);
    if (step >= 86400e3) return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
    if (step >= 60e3) return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function fullTime(t) {
    const d = new Date(t);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function num(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "NaN";
    if (!Number.isFinite(v)) return v > 0 ? "+Inf" : "-Inf";
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3);
    return String(Math.round(v * 1000) / 1000);
  }

  function extent(values) {
    let lo = Infinity, hi = -Infinity;
    for (const v of values) {
      if (Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
    }
    return lo <= hi ? [lo, hi] : [0, 1];
  }

  // Cumulative sums per timestamp, series order (for stacked shares).
  function stack(series) {
    const base = new Map();
    return series.map((s) => ({
      ...s,
      points: s.points.map(([t, v]) => {
        const b = base.get(t) || 0;
        const top = b + (Number.isFinite(v) ? v : 0);
        base.set(t, top);
        return [t, top, b];
      }),
    }));
  }

  // opts: series [{name, points:[[ms, v]]}], bands [{name, points:[[ms, lo, hi]]}],
  // hlines [{y, label}], shade [[ms0, ms1]], stacked, yMin, yMax, onZoom(t0, t1),
  // height, xMin, xMax.
  function line(container, opts) {
    container.replaceChildren();
    const width = Math.max(320, container.clientWidth || 800);
    const height = opts.height || 260;
    const series = opts.stacked ? stack(opts.series || []) : (opts.series || []);
    const bands = opts.bands || [];
    const hlines = opts.hlines || [];
    const xs = [], ys = [];
    for (const s of series) for (const p of s.points) { xs.push(p[0]); ys.push(p[1]); }
    for (const b of bands) for (const p of b.points) { xs.push(p[0]); ys.push(p[1], p[2]); }
    for (const h of hlines) ys.push(h.y);
    if (opts.xMin !== undefined) xs.push(opts.xMin);
    if (opts.xMax !== undefined) xs.push(opts.xMax);
    const wrap = document.createElement("div");
    wrap.className = "chart";
    container.appendChild(wrap);
    if (!xs.length) {
      const p = document.createElement("p");
      p.className = "empty";
      p.textContent = "No data in this range.";
      wrap.appendChild(p);
      return;
    }
    let [x0, x1] = extent(xs);
    if (x0 === x1) { x0 -= 60e3; x1 += 60e3; }
    let [y0, y1] = extent(ys);
    if (opts.yMin !== undefined) y0 = Math.min(y0, opts.yMin);
    if (opts.yMax !== undefined) y1 = Math.max(y1, opts.yMax);
    if (y0 === y1) { y0 -= 1; y1 += 1; }
    const yStep = niceStep(y1 - y0, 5);
    y0 = Math.floor(y0 / yStep) * yStep;
    y1 = Math.ceil(y1 / yStep) * yStep;
    const pw = width - M.left - M.right, ph = height - M.top - M.bottom;
    const X = (t) => M.left + ((t - x0) / (x1 - x0)) * pw;
    const Y = (v) => M.top + (1 - (v - y0) / (y1 - y0)) * ph;
    const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "plot" }, wrap);

    for (const [a, b] of opts.shade || []) {
      el("rect", { class: "shade", x: X(a), y: M.top, width: Math.max(2, X(b) - X(a)), height: ph }, svg);
    }
    const axis = el("g", { class: "axis" }, svg);
    for (let v = y0; v <= y1 + yStep / 2; v += yStep) {
      el("line", { x1: M.left, x2: width - M.right, y1: Y(v), y2: Y(v), class: "grid" }, axis);
      el("text", { x: M.left - 6, y: Y(v) + 4, "text-anchor": "end" }, axis).textContent = num(v);
    }
    const tStep = timeStep(x1 - x0, Math.floor(pw / 90));
    const offset = new Date().getTimezoneOffset() * 60e3;
    for (let t = Math.ceil((x0 - offset) / tStep) * tStep + offset; t <= x1; t += tStep) {
      el("line", { x1: X(t), x2: X(t), y1: M.top, y2: M.top + ph, class: "grid" }, axis);
      el("text", { x: X(t), y: height - 8, "text-anchor": "middle" }, axis).textContent = timeLabel(t, tStep);
    }
    bands.forEach((b, i) => {
      if (!b.points.length) return;
      const top = b.points.map((p) => `${X(p[0])},${Y(p[2])}`);
      const bottom = b.points.slice().reverse().map((p) => `${X(p[0])},${Y(p[1])}`);
      el("polygon", { class: "band", points: top.concat(bottom).join(" "), "data-name": b.name || `band ${i}` }, svg);
    });
    for (const h of hlines) {
      el("line", { class: "hline", x1: M.left, x2: width - M.right, y1: Y(h.y), y2: Y(h.y) }, svg);
      if (h.label) el("text", { class: "hlabel", x: width - M.right - 4, y: Y(h.y) - 4, "text-anchor": "end" }, svg).textContent = h.label;
    }
    series.forEach((s, i) => {
      const c = s.color || color(i);
      if (opts.stacked) {
        const top = s.points.map((p) => `${X(p[0])},${Y(p[1])}`);
        const bottom = s.points.slice().reverse().map((p) => `${X(p[0])},${Y(p[2])}`);
        const area = el("polygon", { class: "area", points: top.concat(bottom).join(" ") }, svg);
        area.style.fill = c;
      }
      // Gaps (NaN, or a jump over 3 steps) break the line.
      let d = "", prev = null;
      const gap = s.step ? 3 * s.step : Infinity;
      for (const [t, v] of s.points) {
        if (!Number.isFinite(v)) { prev = null; continue; }
        d += `${prev === null || t - prev > gap ? "M" : "L"}${X(t).toFixed(1)},${Y(v).toFixed(1)}`;
        prev = t;
      }
      const path = el("path", { class: "series", d, "data-name": s.name, "data-points": s.points.length }, svg);
      path.style.stroke = c;
      s.points.filter(([, v]) => Number.isFinite(v)).length === 1 && s.points.forEach(([t, v]) => {
        const dot = el("circle", { cx: X(t), cy: Y(v), r: 2.5 }, svg);
        dot.style.fill = c;
      });
    });

    // Hover: the values of every series at the nearest time.
    const cursor = el("line", { class: "cursor", y1: M.top, y2: M.top + ph, x1: -10, x2: -10 }, svg);
    const sel = el("rect", { class: "selection", y: M.top, height: ph, x: 0, width: 0 }, svg);
    const tip = document.createElement("div");
    tip.className = "tooltip";
    tip.hidden = true;
    wrap.appendChild(tip);
    const overlay = el("rect", { class: "overlay", x: M.left, y: M.top, width: pw, height: ph }, svg);
    let dragFrom = null;
    const tAt = (ev) => {
      const r = svg.getBoundingClientRect();
      const px = Math.min(Math.max(ev.clientX - r.left, M.left), M.left + pw);
      return [px, x0 + ((px - M.left) / pw) * (x1 - x0)];
    };
    overlay.addEventListener("mousemove", (ev) => {
      const [px, t] = tAt(ev);
      cursor.setAttribute("x1", px);
      cursor.setAttribute("x2", px);
      if (dragFrom !== null) {
        sel.setAttribute("x", Math.min(dragFrom, px));
        sel.setAttribute("width", Math.abs(px - dragFrom));
      }
      const rows = [];
      (opts.series || []).forEach((s, i) => {
        let best = null;
        for (const p of s.points) if (best === null || Math.abs(p[0] - t) < Math.abs(best[0] - t)) best = p;
        if (best) rows.push([s.color || color(i), s.name, best[1], best[0]]);
      });
      if (!rows.length) { tip.hidden = true; return; }
      tip.replaceChildren();
      const head = document.createElement("div");
      head.className = "tip-time";
      head.textContent = fullTime(rows[0][3]);
      tip.appendChild(head);
      for (const [c, name, v] of rows.slice(0, 12)) {
        const row = document.createElement("div");
        const sw = document.createElement("span");
        sw.className = "swatch";
        sw.style.background = c;
        row.append(sw, `${name}: ${num(v)}`);
        tip.appendChild(row);
      }
      if (rows.length > 12) tip.append(`… ${rows.length - 12} more`);
      tip.hidden = false;
      tip.style.left = `${Math.min(px + 12, width - 220)}px`;
      tip.style.top = `${M.top}px`;
    });
    overlay.addEventListener("mouseleave", () => { tip.hidden = true; cursor.setAttribute("x1", -10); cursor.setAttribute("x2", -10); });
    if (opts.onZoom) {
      overlay.addEventListener("mousedown", (ev) => { dragFrom = tAt(ev)[0]; ev.preventDefault(); });
      overlay.addEventListener("mouseup", (ev) => {
        if (dragFrom === null) return;
        const [px] = tAt(ev);
        const a = Math.min(dragFrom, px), b = Math.max(dragFrom, px);
        dragFrom = null;
        sel.setAttribute("width", 0);
        if (b - a < 4) return;
        const T = (p) => x0 + ((p - M.left) / pw) * (x1 - x0);
        opts.onZoom(Math.round(T(a)), Math.round(T(b)));
      });
    }

    if (opts.legend !== false && (opts.series || []).length) {
      const legend = document.createElement("ul");
      legend.className = "legend";
      (opts.series || []).forEach((s, i) => {
        const li = document.createElement("li");
        const sw = document.createElement("span");
        sw.className = "swatch";
        sw.style.background = s.color || color(i);
        li.append(sw, s.name);
        legend.appendChild(li);
      });
      wrap.appendChild(legend);
    }
  }

  // Bars: [[ms, v]] over `step` ms each (a log volume histogram).
  function bars(container, points, step, opts) {
    container.replaceChildren();
    const width = Math.max(320, container.clientWidth || 800);
    const height = (opts && opts.height) || 90;
    const svg = el("svg", { width, height, class: "plot bars", viewBox: `0 0 ${width} ${height}` }, container);
    if (!points.length) return;
    const [x0, x1r] = extent(points.map((p) => p[0]));
    const x1 = x1r + step;
    const [, y1] = extent(points.map((p) => p[1]));
    const pw = width - M.left - M.right, ph = height - 8 - 18;
    const X = (t) => M.left + ((t - x0) / Math.max(1, x1 - x0)) * pw;
    const w = Math.max(1, (step / Math.max(1, x1 - x0)) * pw - 1);
    el("text", { x: M.left - 6, y: 14, "text-anchor": "end", class: "axis-text" }, svg).textContent = num(y1);
    for (const [t, v] of points) {
      const h = y1 > 0 ? (v / y1) * ph : 0;
      const r = el("rect", { class: "bar", x: X(t), y: 8 + ph - h, width: w, height: h, "data-value": v }, svg);
      el("title", {}, r).textContent = `${fullTime(t)}: ${num(v)}`;
    }
    const tStep = timeStep(x1 - x0, Math.floor(pw / 90));
    const offset = new Date().getTimezoneOffset() * 60e3;
    for (let t = Math.ceil((x0 - offset) / tStep) * tStep + offset; t <= x1; t += tStep) {
      el("text", { x: X(t), y: height - 4, "text-anchor": "middle", class: "axis-text" }, svg).textContent = timeLabel(t, tStep);
    }
  }

  return { line, bars, color, num, fullTime };
})();
