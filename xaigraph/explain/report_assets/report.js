/* xaigraph report: the gallery, the image view, the metric tables and the model card.
   Plain JavaScript, no framework, nothing fetched: the data is window.XAIGRAPH_REPORT
   (data.js, written by xaigraph/explain/report.py). Text is always set with textContent. */
"use strict";
(function () {
  const R = window.XAIGRAPH_REPORT;
  const $ = (id) => document.getElementById(id);
  const XS = window.XAIGRAPH_SCALE; // the colour scales (report_scale.js)
  const FLAG_WORD = { TP: "✓ TP", FP: "✗ FP", FN: "○ FN" };
  const S = {
    method: 0, search: "", label: "", flag: "", sort: "index", order: "asc",
    perPage: 48, page: 0, list: [], pos: -1, cls: 0, overlay: true, opacity: 50,
  };
  S.errors = false; S.allMethods = false; // issue 22: "errors only", the all-methods grid

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return node;
  }
  const finite = (v) => typeof v === "number" && Number.isFinite(v);
  const score = (v) => (finite(v) ? v.toFixed(2) : "–");
  const num = (v) => (finite(v) ? (Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(3)) : "–");
  const option = (value, text) => el("option", { value, text });
  const mOf = (im) => im.m[S.method] || { s: "absent" };
  const name = (im) => im.path.split("/").pop();

  // ---- filtering and sorting -----------------------------------------------------------
  function sortValue(im) {
    const m = mOf(im);
    if (S.sort === "index") return null;
    if (S.sort === "confidence") return m.top;
    if (S.sort === "disagreement") return im.dis;
    if (S.sort === "wrong") return (m.wr || [])[1]; // the wrong (predicted) class's score
    if (S.sort.startsWith("metric:")) return (m.mv || {})[S.sort.slice(7)];
    return null;
  }
  function matches(im, q) {
    const m = mOf(im);
    if (q && !im.path.toLowerCase().includes(q) && !im.key.toLowerCase().includes(q)) return false;
    if (S.errors && !m.wr) return false; // errors only: the top prediction is wrong
    if (S.label && !im.gk.includes(S.label) && !(m.pk || []).includes(S.label)) return false;
    const flags = m.flags || [];
    switch (S.flag) {
      case "": return true;
      case "error": return m.s === "error";
      case "none": return m.s === "ok" && im.gt.length === 0;
      case "correct": return m.s === "ok" && im.gt.length > 0 && !flags.includes("FP")
                             && !flags.includes("FN");
      default: return flags.includes(S.flag);
    }
  }
  function apply(keepPage) {
    const q = S.search.trim().toLowerCase();
    const list = [];
    R.images.forEach((im, i) => { if (matches(im, q)) list.push(i); });
    if (S.sort !== "index") {
      const sign = S.order === "asc" ? 1 : -1;
      const val = new Map(list.map((i) => [i, sortValue(R.images[i])]));
      list.sort((a, b) => {
        const va = val.get(a), vb = val.get(b);
        const fa = finite(va), fb = finite(vb);
        if (fa && fb && va !== vb) return sign * (va - vb);
        if (fa !== fb) return fa ? -1 : 1; // images without the value go last
        return a - b;
      });
    } else if (S.order === "desc") {
      list.reverse();
    }
    if (!$("viewer").open) S.pos = -1; // a position in the old list means nothing in the new
    S.list = list;
    const pages = Math.max(1, Math.ceil(list.length / S.perPage));
    if (!keepPage || S.page >= pages) S.page = 0;
    renderPage();
  }

  // ---- gallery -------------------------------------------------------------------------
  function labelItems(im, m) {
    const items = [];
    for (const [label, sc, flag] of m.pred || []) {
      items.push(el("li", {}, flag ? el("span", { class: `flag flag-${flag}`, text: FLAG_WORD[flag] }) : null,
        flag ? " " : "", label, " ", el("span", { class: "value", text: score(sc) })));
    }
    for (const label of m.fn || []) {
      items.push(el("li", {}, el("span", { class: "flag flag-FN", text: FLAG_WORD.FN }), " ", label));
    }
    return items;
  }
  function tile(i) {
    const im = R.images[i];
    const m = mOf(im);
    const thumb = m.thumb
      ? el("img", { class: "thumb", src: m.thumb, alt: "", loading: "lazy", width: 160, height: 120 })
      : el("div", { class: "nothumb", text: m.s === "error" ? "failed" : "no picture" });
    const body = m.s === "error"
      ? el("p", { class: "err" }, el("span", { class: "flag flag-FP", text: "✗ failed:" }), " ", m.err)
      : m.s === "absent"
        ? el("p", { class: "err", text: "not in this method's results" })
        : el("ul", { class: "labels" }, ...labelItems(im, m));
    const truth = im.gt.length
      ? el("p", { class: "note", text: `truth: ${im.gt.join(", ")}` })
      : el("p", { class: "note", text: "truth: none" });
    const button = el("button", { type: "button", class: "tile", "data-i": i,
      "aria-label": `${im.path}: open` }, thumb, el("div", { class: "name", text: name(im) }), body, truth,
      pairNote(im));
    return el("li", {}, button);
  }
  function renderPage() {
    const grid = $("grid");
    const start = S.page * S.perPage;
    const slice = S.list.slice(start, start + S.perPage);
    grid.replaceChildren(...slice.map(tile));
    const pages = Math.max(1, Math.ceil(S.list.length / S.perPage));
    $("count").textContent = `${S.list.length} of ${R.images.length} images` +
      (slice.length ? `, showing ${start + 1}-${start + slice.length}` : "");
    $("page").textContent = `Page ${S.page + 1} of ${pages}`;
    $("prev").disabled = S.page === 0;
    $("next").disabled = S.page >= pages - 1;
  }
  function tiles() { return Array.from($("grid").querySelectorAll(".tile")); }
  function columns(ts) {
    if (!ts.length) return 1;
    const top = ts[0].getBoundingClientRect().top;
    let n = 0;
    for (const t of ts) { if (Math.abs(t.getBoundingClientRect().top - top) < 2) n++; else break; }
    return Math.max(1, n);
  }
  function focusTile(k) {
    const ts = tiles();
    if (ts.length) ts[Math.max(0, Math.min(ts.length - 1, k))].focus();
  }
  function gridKey(e) {
    const ts = tiles();
    const k = ts.indexOf(document.activeElement);
    if (k < 0) return;
    const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns(ts), ArrowUp: -columns(ts) }[e.key];
    if (step === undefined) return;
    e.preventDefault();
    const target = k + step;
    const pages = Math.ceil(S.list.length / S.perPage);
    if (target >= ts.length && S.page < pages - 1) { S.page++; renderPage(); focusTile(0); }
    else if (target < 0 && S.page > 0) { S.page--; renderPage(); focusTile(S.perPage - 1); }
    else if (target >= 0 && target < ts.length) focusTile(target);
  }

  // ---- issue 22: why was it wrong, all methods at once -----------------------------------
  function pairNote(im) { // sorting by disagreement: the two methods that disagree most
    if (S.sort !== "disagreement" || !im.dpair) return null;
    const [a, b, v] = im.dpair;
    return el("p", { class: "note pair", text: `most apart: ${a} vs ${b} (${num(v)})` });
  }
  function pane(im, t, ...caption) { // one map over the original, with its caption
    const stage = el("div", { class: "pane-stage" });
    if (im.img) stage.append(el("img", { src: im.img, alt: "" }));
    else stage.classList.add("no-original");
    if (t && t.map) {
      const map = el("img", { class: "pane-map", src: t.map, alt: `saliency map of ${t.label}` });
      if (im.img) map.style.opacity = String(S.opacity / 100);
      stage.append(map);
    }
    return el("figure", { class: "pane" }, stage, el("figcaption", {}, ...caption));
  }
  const flagSpan = (f) => (f ? el("span", { class: `flag flag-${f}`, text: FLAG_WORD[f] }) : null);
  function renderWhy(im, m) { // a wrong image: its predicted class's map beside the truth's
    const ts = m.t || [];
    const shown = m.wr ? ts.filter((t) => t.role === "predicted").concat(ts.filter((t) => t.role === "truth")) : [];
    const box = $("why");
    box.hidden = !shown.some((t) => t.role === "predicted") || !shown.some((t) => t.role === "truth");
    if (box.hidden) { $("why-panes").replaceChildren(); return; }
    $("why-panes").replaceChildren(...shown.map((t) => pane(im, t,
      el("strong", { text: t.role === "predicted" ? "predicted: " : "truth: " }), `${t.label} `,
      el("span", { class: "value", text: score(t.score) }), " ", flagSpan(t.f),
      t.map ? "" : " (map file missing)")));
  }
  function renderAllMethods(im, t) { // every method's map of the shown class, and their ρ
    const button = $("all-methods-btn");
    button.hidden = R.methods.length < 2;
    button.setAttribute("aria-pressed", S.allMethods ? "true" : "false");
    const box = $("all-methods");
    box.hidden = button.hidden || !S.allMethods;
    if (box.hidden) return;
    const same = (x) => t && x.cls === t.cls && x.label === t.label;
    // (the heading names the section: no "Method" in it, the viewer's select has that label)
    $("all-methods-h").textContent = t ? `Side by side: ${t.label}` : "Side by side";
    $("all-methods-panes").replaceChildren(...R.methods.map((mm, k) => {
      const mine = ((im.m[k] || {}).t || []).find(same);
      return pane(im, mine, el("strong", { text: `${mm}: ` }),
        mine ? `${mine.label} ` : "no map of this class",
        mine ? el("span", { class: "value", text: score(mine.score) }) : null);
    }));
    const rk = (im.rk || []).find(same);
    const items = rk ? rk.r.map(([i, j, r]) => el("li", {
      text: `Spearman ρ(${R.methods[i]}, ${R.methods[j]}) = ${finite(r) ? r.toFixed(3) : "undefined (a constant map)"}` }))
      : [el("li", { text: "no rank correlation: fewer than two methods have a map of this class" })];
    if (im.dpair) {
      items.push(el("li", { text: `most apart (first class): ${im.dpair[0]} vs ${im.dpair[1]}, 1 − correlation ${num(im.dpair[2])}` }));
    }
    $("rank-list").replaceChildren(...items);
  }
  function setAllMethods(on) {
    S.allMethods = on;
    if (viewing()) renderViewer();
  }

  // ---- the image view ------------------------------------------------------------------
  function open(pos) {
    S.pos = pos; S.cls = 0;
    renderViewer();
    if (!$("viewer").open) $("viewer").showModal();
  }
  function move(step) {
    const pos = S.pos + step;
    if (pos < 0 || pos >= S.list.length) return;
    S.pos = pos; S.cls = 0; renderViewer();
  }
  function pct(v, total) { return `${(100 * v / total).toFixed(3)}%`; }
  function boxDiv(b, extra, im) {
    const [x1, y1, x2, y2] = b;
    const d = el("div", { class: `box ${extra}` });
    d.style.left = pct(x1, im.w); d.style.top = pct(y1, im.h);
    d.style.width = pct(x2 - x1, im.w); d.style.height = pct(y2 - y1, im.h);
    return d;
  }
  function boxLabel(b, label, im) {
    const span = el("span", { class: "box-label", text: label });
    span.dataset.box = JSON.stringify([b[0] / im.w, b[1] / im.h, b[2] / im.w, b[3] / im.h]);
    return span;
  }

  // ---- box labels: inside the picture, none over another -------------------------------
  // Each label goes to the free place nearest its box's top-left corner among: inside the
  // box at its top or bottom, just above or below it, and beside or under the labels already
  // placed; a label with no free place left is hidden (the ground truth is listed beside).
  const meets = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
  function spots(box, w, h, W, H, placed) {
    const clampX = (x) => Math.max(0, Math.min(W - w, x)), clampY = (y) => Math.max(0, Math.min(H - h, y));
    const xs = [box[0], 0, ...placed.map((p) => p.x + p.w), ...placed.map((p) => p.x - w)].map(clampX);
    const ys = [box[1], box[1] - h, box[3], box[3] - h, 0, H - h, ...placed.map((p) => p.y + p.h),
      ...placed.map((p) => p.y - h)].map(clampY);
    const all = [];
    for (const y of new Set(ys)) for (const x of new Set(xs)) all.push({ x, y, w, h });
    const d = (s) => Math.abs(s.x - box[0]) + 2 * Math.abs(s.y - box[1]);
    return all.sort((a, b) => d(a) - d(b));
  }
  function layoutLabels() {
    const layer = $("boxes");
    const W = layer.clientWidth, H = layer.clientHeight;
    const placed = [];
    for (const span of layer.querySelectorAll(".box-label")) {
      span.hidden = false;
      span.style.maxWidth = `${W}px`;
      const w = Math.ceil(span.offsetWidth), h = Math.ceil(span.offsetHeight);
      const [x1, y1, x2, y2] = JSON.parse(span.dataset.box);
      const box = [x1 * W, y1 * H, x2 * W, y2 * H].map(Math.round);
      const free = w <= W && h <= H ? spots(box, w, h, W, H, placed).find((s) => !placed.some((p) => meets(s, p))) : null;
      if (!free) { span.hidden = true; continue; }
      placed.push(free);
      span.style.left = `${free.x}px`; span.style.top = `${free.y}px`;
    }
  }
  function renderViewer() {
    const im = R.images[S.list[S.pos]];
    const m = mOf(im);
    const targets = m.t || [];
    if (S.cls >= targets.length) S.cls = 0;
    const t = targets[S.cls];
    $("viewer-title").textContent = `${im.path} (${S.pos + 1} of ${S.list.length})`;
    $("viewer-prev").disabled = S.pos === 0;
    $("viewer-next").disabled = S.pos >= S.list.length - 1;
    $("viewer-method").value = String(S.method);
    const stage = $("stage");
    const original = $("original"), map = $("map");
    if (im.img) { original.src = im.img; original.alt = `original image ${im.path}`; }
    else { original.removeAttribute("src"); original.alt = ""; }
    stage.classList.toggle("no-original", !im.img);
    if (t && t.map) { map.src = XS.src(t); map.alt = `saliency map of ${t.label}`; map.hidden = false; }
    else { map.removeAttribute("src"); map.alt = ""; map.hidden = true; }
    map.style.opacity = String(S.opacity / 100);
    stage.classList.toggle("overlay-off", !S.overlay);
    const boxes = [], labels = [];
    if (finite(im.w) && finite(im.h)) {
      for (const b of im.boxes) { boxes.push(boxDiv(b, "truth", im)); labels.push(boxLabel(b, `truth: ${b[4]}`, im)); }
      if (t && Array.isArray(t.box)) { boxes.push(boxDiv(t.box, "target", im)); labels.push(boxLabel(t.box, `detection: ${t.label}`, im)); }
    }
    $("boxes").replaceChildren(...boxes, ...labels);
    layoutLabels();
    const what = !t ? (m.s === "error" ? `failed: ${m.err}` : "no map")
      : !t.map ? `${t.label}: map file missing`
      : S.overlay ? `${t.label} (${score(t.score)}) map over the ${im.img ? "original" : "grey background (original not found)"}, opacity ${S.opacity} %`
      : `${t.label}: overlay off`;
    $("stage-caption").textContent = `Showing: ${what}. Method: ${R.methods[S.method]}.`;
    XS.show(t, S.method); // the colour scale bar (report_scale.js)
    const list = $("class-list");
    list.replaceChildren(...targets.map((tt, k) => {
      const mini = el("span", { class: "mini" }, tt.map ? el("img", { src: XS.src(tt), alt: "" }) : null);
      if (im.img) mini.style.backgroundImage = `url("${im.img}")`;
      const b = el("button", { type: "button", class: "class-btn", "aria-pressed": k === S.cls ? "true" : "false",
        "data-k": k }, mini, el("small", { text: `${k + 1}. ${tt.label} ${score(tt.score)}${tt.low ? " (low confidence)" : ""}` }));
      b.addEventListener("click", () => { S.cls = k; renderViewer(); });
      return b;
    }));
    if (!targets.length) list.replaceChildren(el("p", { class: "note", text: "no class maps" }));
    renderDetails(im, m, t);
    renderWhy(im, m);
    renderAllMethods(im, t);
  }
  function renderDetails(im, m, t) {
    const parts = [];
    if (m.s === "error") parts.push(el("p", { class: "err" }, el("span", { class: "flag flag-FP", text: "✗ failed:" }), " ", m.err));
    if (m.s === "ok") {
      parts.push(el("h3", { text: "Predicted" }));
      const flagOf = new Map((m.pred || []).map((p) => [p[0], p[2]]));
      parts.push(el("ul", {}, ...(m.all || []).map(([label, sc]) => {
        const f = flagOf.get(label);
        return el("li", {}, f ? el("span", { class: `flag flag-${f}`, text: FLAG_WORD[f] }) : null, f ? " " : "",
          label, " ", el("span", { class: "value", text: score(sc) }));
      })));
    }
    parts.push(el("h3", { text: "Ground truth" }));
    parts.push(im.gt.length
      ? el("ul", {}, ...im.gt.map((g) => {
        const missed = (m.fn || []).includes(g);
        return el("li", {}, missed ? el("span", { class: "flag flag-FN", text: FLAG_WORD.FN }) : null, missed ? " " : "", g);
      }))
      : el("p", { class: "note", text: "none" }));
    if (t && Object.keys(t.mv || {}).length) {
      parts.push(el("h3", { text: `Metrics for ${t.label}` }));
      parts.push(el("table", { class: "image-metrics" }, ...Object.entries(t.mv).map(([k, v]) =>
        el("tr", {}, el("th", { scope: "row", text: k }), el("td", { class: "num", text: num(v) })))));
    }
    if (R.methods.length > 1) {
      parts.push(el("p", { class: "note", text: `Disagreement between methods: ${num(im.dis)} (1 − correlation of the maps, mean over pairs)` }));
    }
    if (finite(im.w)) parts.push(el("p", { class: "note", text: `${im.w} × ${im.h} px` }));
    $("details").replaceChildren(...parts);
  }
  function viewerKey(e) {
    const tag = e.target.tagName, type = e.target.type;
    if (tag === "SELECT" || type === "range" || type === "search") return;
    if (e.key === "ArrowRight") { e.preventDefault(); move(1); }
    else if (e.key === "ArrowLeft") { e.preventDefault(); move(-1); }
    else if (e.key === "o" || e.key === "O") { setOverlay(!S.overlay); }
    else if ((e.key === "m" || e.key === "M") && R.methods.length > 1) { setAllMethods(!S.allMethods); }
    else if (/^[1-9]$/.test(e.key)) {
      const k = Number(e.key) - 1;
      const im = R.images[S.list[S.pos]];
      if (k < (mOf(im).t || []).length) { S.cls = k; renderViewer(); }
    }
  }
  function setOverlay(on) {
    S.overlay = on; $("overlay").checked = on;
    if (viewing()) renderViewer();
  }
  function closed() {
    if (S.pos < 0) return;
    const page = Math.floor(S.pos / S.perPage);
    if (page !== S.page) { S.page = page; renderPage(); }
    focusTile(S.pos - S.page * S.perPage);
    S.pos = -1; // no image is shown: method and filter changes have none to follow
  }
  const viewing = () => $("viewer").open && S.pos >= 0 && S.pos < S.list.length;
  function setMethod(k) {
    const shownImage = viewing() ? S.list[S.pos] : -1;
    if (shownImage >= 0) { // keep the class shown, when the other method has a map of it
      const im = R.images[shownImage];
      const shown = (mOf(im).t || [])[S.cls];
      S.method = k;
      const same = (mOf(im).t || []).findIndex((t) => shown && t.cls === shown.cls && t.label === shown.label);
      S.cls = Math.max(0, same);
    }
    S.method = k; $("method").value = String(k); $("viewer-method").value = String(k);
    apply(true);
    if (shownImage < 0) return;
    S.pos = S.list.indexOf(shownImage); // the list may be sorted or filtered by the method
    if (S.pos >= 0) renderViewer();
    else $("viewer").close(); // the image is not in the new method's list
  }

  // ---- metrics and model card ----------------------------------------------------------
  function interval(s) {
    if (!s) return "–";
    const ci = Array.isArray(s.ci95) ? ` [${num(s.ci95[0])}, ${num(s.ci95[1])}]` : "";
    return `${num(s.mean)}${ci}` + (finite(s.n) ? ` n=${s.n}` : "");
  }
  // The method with the best mean by the metric's direction, when its 95 % interval overlaps
  // no other method's: {k, why}. k is -1 ("no clear best") with the reason in why: a tie, an
  // interval missing (n < 2), or an overlap; why is "" when there is nothing to compare.
  function best(metric, dir) {
    const sums = R.methods.map((mm) => ((R.metrics.summary || {})[mm] || {})[metric] || {});
    const ok = sums.map((s, k) => k).filter((k) => finite(sums[k].mean));
    if (ok.length < 2 || !dir) return { k: -1, why: "" };
    const target = (dir === "lower" ? Math.min : Math.max)(...ok.map((k) => sums[k].mean));
    const top = ok.filter((k) => sums[k].mean === target);
    if (top.length === ok.length) return { k: -1, why: "no clear best: every mean is the same" };
    if (top.length > 1) return { k: -1, why: `no clear best: ${top.map((k) => R.methods[k]).join(" and ")} tie` };
    const w = top[0];
    const ci = (k) => (Array.isArray(sums[k].ci95) && finite(sums[k].ci95[0]) && finite(sums[k].ci95[1])
      && finite(sums[k].n) && sums[k].n >= 2 ? sums[k].ci95 : null);
    for (const k of ok) {
      if (k === w) continue;
      const a = ci(w), b = ci(k);
      if (!a || !b) return { k: -1, why: `no clear best: no interval for ${R.methods[a ? k : w]} (n < 2)` };
      if (a[0] <= b[1] && b[0] <= a[1]) {
        return { k: -1, why: `no clear best: the intervals of ${R.methods[w]} and ${R.methods[k]} overlap` };
      }
    }
    return { k: w, why: "" };
  }
  function renderMetrics() {
    if (!R.metrics) { $("nav-metrics").textContent = "Metrics (none)"; return; }
    const info = R.metrics.metrics || {};
    const names = R.metric_names;
    const head = el("tr", {}, el("th", { scope: "col", text: "metric" }), el("th", { scope: "col", text: "better" }),
      ...R.methods.map((mm) => el("th", { scope: "col", text: mm })));
    const rows = names.map((metric) => {
      const dir = (info[metric] || {}).direction;
      const b = best(metric, dir);
      const better = dir ? `${dir === "lower" ? "↓ lower" : "↑ higher"} is better` : "–";
      return el("tr", {}, el("th", { scope: "row", text: metric }),
        el("td", { text: better + (b.why ? `; ${b.why}` : "") }),
        ...R.methods.map((mm, k) => el("td", { class: "num",
          text: interval(((R.metrics.summary || {})[mm] || {})[metric]) + (b.k === k ? " ★ best" : "") })));
    });
    const side = el("table", { id: "summary-table" },
      el("caption", { text: "Methods side by side: mean [95 % bootstrap interval] n" }), el("thead", {}, head), el("tbody", {}, ...rows));
    const about = el("ul", { class: "note" }, ...names.map((metric) => {
      const d = info[metric] || {};
      const params = d.params ? Object.entries(d.params).map(([k, v]) => `${k}=${v}`).join(", ") : "";
      return el("li", { text: `${metric}: ${d.paper || "no paper given"}${params ? `; ${params}` : ""}` });
    }));
    const pick = el("select", { id: "class-metric" }, ...names.map((n) => option(n, n)));
    const perClass = el("div", { id: "per-class" });
    const drawPerClass = () => {
      const metric = pick.value;
      const pc = R.metrics.per_class || {};
      const classes = Array.from(new Set(R.methods.flatMap((mm) => Object.keys(pc[mm] || {})))).sort();
      perClass.replaceChildren(el("table", { id: "class-table" },
        el("caption", { text: `Per class: ${metric}, mean [95 % interval] n` }),
        el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "class" }), ...R.methods.map((mm) => el("th", { scope: "col", text: mm })))),
        el("tbody", {}, ...classes.map((c) => el("tr", {}, el("th", { scope: "row", text: c }),
          ...R.methods.map((mm) => el("td", { class: "num", text: interval(((pc[mm] || {})[c] || {})[metric]) })))))));
    };
    pick.addEventListener("change", drawPerClass);
    drawPerClass();
    $("metrics-body").replaceChildren(side, about, el("label", {}, "Per-class metric ", pick), perClass);
  }
  const CARD_FIRST = ["model", "method", "target_layer", "pipeline", "xaigraph_version"];
  function cardValue(v) {
    if (Array.isArray(v) && v.length > 12) return `${v.slice(0, 12).map(String).join(", ")}, … (${v.length} in all)`;
    if (Array.isArray(v) && v.every((x) => x === null || typeof x !== "object")) return v.map(String).join(", ");
    if (v !== null && typeof v === "object") return JSON.stringify(v);
    return String(v);
  }
  function renderCards() {
    const tables = R.methods.map((mm) => {
      const card = R.cards[mm] || {};
      const keys = Object.keys(card);
      const order = [...CARD_FIRST.filter((k) => k in card), ...keys.filter((k) => !CARD_FIRST.includes(k))];
      const rows = [];
      for (const k of order) { // an object of plain values: one row per field (model.path, ...)
        const v = card[k];
        const plain = v !== null && typeof v === "object" && !Array.isArray(v) &&
          Object.values(v).every((x) => x === null || typeof x !== "object" || Array.isArray(x));
        const fields = plain ? Object.entries(v).map(([f, x]) => [`${k}.${f}`, x]) : [[k, v]];
        for (const [f, x] of fields) {
          rows.push(el("tr", {}, el("th", { scope: "row", text: f }), el("td", { text: cardValue(x) })));
        }
      }
      if (!rows.length) rows.push(el("tr", {}, el("td", { text: "no run.json" })));
      return el("table", { class: "card", "data-method": mm }, el("caption", { text: `Method: ${mm}` }), el("tbody", {}, ...rows));
    });
    $("card-body").replaceChildren(...tables, el("p", { class: "note", text: `Report by ${R.generator} from ${R.source}` }));
  }

  // ---- set-up --------------------------------------------------------------------------
  function init() {
    document.title = R.title;
    $("title").textContent = R.title;
    for (const id of ["method", "viewer-method"]) {
      $(id).replaceChildren(...R.methods.map((mm, k) => option(String(k), mm)));
    }
    const sorts = [option("index", "input order"), option("confidence", "confidence (top score)")];
    if (R.methods.length > 1) sorts.push(option("disagreement", "disagreement between methods"));
    if (R.images.some((im) => im.m.some((mm) => mm.wr))) sorts.push(option("wrong", "confidence of the wrong class"));
    for (const n of R.metric_names) sorts.push(option(`metric:${n}`, `metric: ${n}`));
    $("sort").replaceChildren(...sorts);
    $("label-filter").append(...R.labels.map(([key, text]) => option(key, text)));
    $("rule").textContent = "Flags: the predicted labels are the top " +
      (R.top_k ? `${R.top_k}` : "k (k = the number of ground-truth labels)") +
      " predictions; ✓ TP = predicted and true, ✗ FP = predicted, not true, ○ FN = true, not predicted." +
      (R.methods.length > 1 ? " Disagreement = 1 − correlation of two methods' maps of the same class, mean over pairs (0 same, 2 opposite)." : "");
    $("method").addEventListener("change", (e) => setMethod(Number(e.target.value)));
    $("viewer-method").addEventListener("change", (e) => setMethod(Number(e.target.value)));
    $("search").addEventListener("input", (e) => { S.search = e.target.value; apply(false); });
    $("label-filter").addEventListener("change", (e) => { S.label = e.target.value; apply(false); });
    $("flag-filter").addEventListener("change", (e) => { S.flag = e.target.value; apply(false); });
    $("errors-only").addEventListener("change", (e) => { S.errors = e.target.checked; apply(false); });
    $("all-methods-btn").addEventListener("click", () => setAllMethods(!S.allMethods));
    $("sort").addEventListener("change", (e) => {
      S.sort = e.target.value;
      S.order = S.sort === "index" ? "asc" : "desc"; // input order first; best scores first
      $("order").value = S.order;
      apply(false);
    });
    $("order").addEventListener("change", (e) => { S.order = e.target.value; apply(false); });
    $("prev").addEventListener("click", () => { S.page--; renderPage(); });
    $("next").addEventListener("click", () => { S.page++; renderPage(); });
    $("grid").addEventListener("click", (e) => {
      const b = e.target.closest(".tile");
      if (b) open(S.list.indexOf(Number(b.dataset.i)));
    });
    $("grid").addEventListener("keydown", gridKey);
    $("viewer").addEventListener("keydown", viewerKey);
    $("viewer").addEventListener("close", closed);
    $("close").addEventListener("click", () => $("viewer").close());
    $("viewer-prev").addEventListener("click", () => move(-1));
    $("viewer-next").addEventListener("click", () => move(1));
    $("overlay").addEventListener("change", (e) => setOverlay(e.target.checked));
    $("opacity").addEventListener("input", (e) => {
      S.opacity = Number(e.target.value);
      $("opacity-value").textContent = `${S.opacity} %`;
      $("map").style.opacity = String(S.opacity / 100);
      if (viewing()) renderViewer();
    });
    XS.init(() => { if (viewing()) renderViewer(); }); // the colour scale selector
    if (window.ResizeObserver) new ResizeObserver(layoutLabels).observe($("boxes"));
    renderMetrics();
    renderCards();
    apply(false);
    document.body.dataset.ready = "true";
  }
  init();
})();
