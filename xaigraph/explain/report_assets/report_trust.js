// "Can these maps be trusted?": eval's sanity checks (metrics.json's sanity block, R.trust;
// xaigraph/explain/trust.py): per method, each check's mean, 95 % interval, threshold and
// verdict, and the cascading MPRT curve (Spearman after each re-initialisation step, its
// interval as a band, the threshold dashed). Text is set with textContent only.
(function () {
  "use strict";
  const R = window.XAIGRAPH_REPORT;
  const T = R.trust;
  const box = document.getElementById("trust-body");
  if (!box) return;
  if (!T || !T.summary) { box.hidden = true; return; }
  // SVG's namespace, from an <svg> the HTML parser made (index.html): the page names no URL
  const SVG = document.getElementById("svg-ns").namespaceURI;
  const finite = (v) => typeof v === "number" && Number.isFinite(v);
  const f2 = (v) => (finite(v) ? v.toFixed(2) : "–");
  function el(tag, attrs, ...kids) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") n.textContent = v; else if (k === "class") n.className = v; else n.setAttribute(k, v);
    }
    for (const c of kids) if (c) n.append(c);
    return n;
  }
  function svg(tag, attrs) {
    const n = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
    return n;
  }
  const cell = (s) => (s && finite(s.mean) ? `${f2(s.mean)} [${f2(s.ci95[0])}, ${f2(s.ci95[1])}] n=${s.n}` : "–");
  const verdict = (p) => (p === true ? "pass" : p === false ? "FAIL" : "–");
  // the MPRT curve: x the cascade steps, y Spearman in [-1, 1]
  function curve(method, cascade) {
    const W = 260, H = 120, L = 30, B = 18, n = cascade.length;
    const x = (i) => L + (n < 2 ? (W - L) / 2 : (i * (W - L - 8)) / (n - 1));
    const y = (v) => 4 + ((1 - v) / 2) * (H - B - 8);
    const g = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "mprt-curve",
      role: "img", "aria-label": `${method}: MPRT Spearman after each step` });
    for (const v of [1, 0, -1]) {
      g.append(svg("line", { x1: L, x2: W, y1: y(v), y2: y(v), class: "axis" }));
      const t = svg("text", { x: 2, y: y(v) + 4, class: "tick" }); t.textContent = String(v); g.append(t);
    }
    g.append(svg("line", { x1: L, x2: W, y1: y(T.threshold), y2: y(T.threshold), class: "threshold" }));
    const ok = cascade.map((c, i) => [i, c.spearman]).filter(([, s]) => s && finite(s.mean));
    const band = ok.filter(([, s]) => Array.isArray(s.ci95));
    if (band.length) {
      const top = band.map(([i, s]) => `${x(i)},${y(s.ci95[1])}`);
      const bottom = band.slice().reverse().map(([i, s]) => `${x(i)},${y(s.ci95[0])}`);
      g.append(svg("polygon", { points: [...top, ...bottom].join(" "), class: "band" }));
    }
    g.append(svg("polyline", { points: ok.map(([i, s]) => `${x(i)},${y(s.mean)}`).join(" "), class: "mean" }));
    for (const [i, s] of ok) g.append(svg("circle", { cx: x(i), cy: y(s.mean), r: 2.5, class: s.mean <= T.threshold ? "pass" : "fail" }));
    const first = svg("text", { x: L, y: H - 4, class: "tick" }); first.textContent = "classifier → input";
    g.append(first);
    return g;
  }
  const rows = [];
  const curves = [];
  for (const [method, s] of Object.entries(T.summary)) {
    if (s.skipped) {
      rows.push(el("tr", {}, el("th", { scope: "row", text: method }), el("td", { colspan: "4", text: `not measured: ${s.skipped}` })));
      continue;
    }
    rows.push(el("tr", {}, el("th", { scope: "row", text: method }), el("td", { text: "class sensitivity ↓" }),
      el("td", { class: "num", text: cell(s.class_sensitivity) }), el("td", { class: "num", text: `≤ ${T.threshold}` }),
      el("td", { class: `verdict ${verdict(s.class_sensitivity_passed)}`, text: verdict(s.class_sensitivity_passed) })));
    for (const c of s.cascade || []) {
      rows.push(el("tr", {}, el("th", { scope: "row", text: method }), el("td", { text: `MPRT Spearman, ${c.step} random ↓` }),
        el("td", { class: "num", text: cell(c.spearman) }), el("td", { class: "num", text: `≤ ${T.threshold}` }),
        el("td", { class: `verdict ${verdict(c.passed)}`, text: verdict(c.passed) })));
    }
    curves.push(el("figure", { class: "mprt" }, curve(method, s.cascade || []),
      el("figcaption", { text: `${method}: Spearman to the original map after each step (band: 95 % interval; dashed: ${T.threshold})` })));
  }
  const head = el("tr", {}, ...["method", "check", "mean [95 % interval] n", "threshold", "verdict"].map((h) => el("th", { scope: "col", text: h })));
  box.replaceChildren(
    el("h2", { text: "Can these maps be trusted?" }),
    el("p", { class: "note", text: "Sanity checks (Adebayo et al. 2018): a map should change once the weights it depends on are random (cascading MPRT), and differ between the predicted and the least likely class (class sensitivity). Lower is better; a mean above the threshold fails." }),
    el("table", { id: "trust-table" }, el("thead", {}, head), el("tbody", {}, ...rows)),
    el("div", { class: "mprt-curves" }, ...curves));
})();
