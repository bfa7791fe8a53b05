// The colour scales of the report's image view (report_scale.py, docs/runtime.md "Colour
// scales"): the mode selector, the map shown in that mode (a view made when the report was
// built), its colour bar with the values of its ends, and the low-confidence badge.
(function () {
  "use strict";
  const R = window.XAIGRAPH_REPORT;
  const K = R.scale || { mode: "map", gradient: [], modes: ["map"] };
  const X = { mode: K.mode };
  const NAMES = { map: "map: each map on its own min-max", image: "image: the image's maps on one scale",
    run: "run: one scale for the whole run", score: "score: the map times the class's score" };
  const $ = (id) => document.getElementById(id);
  function fmt(v, fallback) {
    return (typeof v === "number" && isFinite(v)) ? String(Number(v.toPrecision(3))) : fallback;
  }
  // what the view of target t shows in the chosen mode: {url, low, high, mode, fallback}
  X.view = function (t) {
    const v = t && t.v;
    const chosen = v && v[X.mode];
    if (chosen && chosen[0]) return { url: chosen[0], low: chosen[1], high: chosen[2], mode: X.mode, fallback: false };
    const own = (v && v.map) || [t ? t.map : null, null, null];
    return { url: own[0], low: own[1], high: own[2], mode: "map", fallback: X.mode !== "map" };
  };
  X.src = (t) => X.view(t).url;
  X.show = function (t, method) {
    const box = $("scale");
    if (!box) return;
    box.hidden = !(t && t.map);
    $("low-badge").hidden = !(t && t.low);
    if (!t || !t.map) return;
    const w = X.view(t);
    $("scale-bar").style.backgroundImage = K.gradient[method] || K.gradient[0] || "";
    $("scale-low").textContent = fmt(w.low, "min");
    $("scale-high").textContent = fmt(w.high, "max");
    const mark = $("scale-mark");
    mark.hidden = w.mode !== "score";
    if (w.mode === "score") mark.style.left = `${100 * ((t.v && t.v.mark) || 0)}%`;
    box.dataset.mode = w.mode;
    $("scale-note").textContent = w.fallback
      ? `${X.mode} scale not available (the maps' raw ranges were not recorded): shown on the map's own scale`
      : `${w.mode} scale`;
  };
  X.init = function (rerender) {
    const pick = $("map-scale");
    if (!pick) return;
    pick.replaceChildren(...(K.modes || ["map"]).map((m) => {
      const o = document.createElement("option");
      o.value = m; o.textContent = NAMES[m] || m;
      return o;
    }));
    pick.value = X.mode;
    pick.addEventListener("change", (e) => { X.mode = e.target.value; rerender(); });
  };
  window.XAIGRAPH_SCALE = X;
})();
