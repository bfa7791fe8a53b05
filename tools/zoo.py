"""The model zoo: build every entry of models_zoo.yaml by each of its routes, augment it with
every method that applies, validate, and write docs/zoo.md. `make zoo`.

    python tools/zoo.py                 # everything (resumes: redoes only what changed)
    python tools/zoo.py --only resnet18,deit_tiny_patch16_224
    python tools/zoo.py --report        # rewrite docs/zoo.md from the cached results

Models are built once and cached under ~/.cache/xaigraph/zoo (XAIGRAPH_CACHE moves it); each
(model, route) result is cached with a digest of the entry and of xaigraph's sources, so a
second run only redoes entries or code that changed. Every (model, route) runs in a child
process with a time limit: a crash or a hang is recorded as that model's failure. The
`status` fields of models_zoo.yaml are rewritten from the results.

timm entries need the `zoo` extra (torch, timm); ONNX entries (the onnx package's light
models, the bundled model) need nothing beyond xaigraph.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ZOO_FILE = ROOT / "models_zoo.yaml"
REPORT = ROOT / "docs" / "zoo.md"
CACHE = Path(os.environ.get("XAIGRAPH_CACHE", Path.home() / ".cache" / "xaigraph")) / "zoo"
TIME_LIMIT = 1800  # seconds per (model, route)
METHOD_ORDER = ["reciprocam", "vitreciprocam", "activationmap", "cam", "eigencam",
                "detclassprobabilitymap"]


@dataclass
class Entry:
    name: str
    source: str
    family: str
    kind: str
    input: int
    methods: list[str]
    status: str
    routes: list[str] = field(default_factory=list)

    @property
    def group(self) -> str:
        """The coverage target this entry counts towards."""
        return "cnn" if self.kind == "cnn" else "transformer/hybrid"


def load_entries(path: Path = ZOO_FILE) -> list[Entry]:
    import yaml

    data = yaml.safe_load(path.read_text())
    entries = []
    for item in data["models"]:
        routes = item.pop("routes", None) or data["routes"][item["source"]]
        entries.append(Entry(**item, routes=list(routes)))
    return entries


# -- building the models -------------------------------------------------------------------

def light_dir() -> Path:
    import onnx

    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def bundled_file() -> Path:
    from importlib.resources import files

    return Path(str(files("xaigraph.data") / "efficientnet_lite0.onnx"))


IR_ROUTES = ("ov", "ov_static", "ir")  # augmented as IR; the others as ONNX
SUFFIX = {"ov": ".xml", "ov_static": ".static.xml", "onnx": ".onnx",
          "onnx_static": ".static.onnx"}


def model_file(entry: Entry, route: str) -> Path:
    """The file of `entry` for `route`, built (and cached) when needed."""
    if entry.source == "onnx-light":
        return light_dir() / f"{entry.name}.onnx"
    if entry.source == "bundled":
        return bundled_file()
    folder = CACHE / "models" / entry.name
    path = folder / f"{entry.name}{SUFFIX[route]}"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        _export_timm(entry, route, path)
    return path


def _export_timm(entry: Entry, route: str, path: Path) -> None:
    """`ov`: `openvino.convert_model`, dynamic batch; `ov_static`: the same, the input fixed
    at `[1, 3, S, S]` (every shape a constant); `onnx` and `onnx_static`: `torch.onnx.export`
    (see `_export_onnx`)."""
    import openvino as ov
    import timm
    import torch

    torch.manual_seed(0)
    model = timm.create_model(entry.name, pretrained=False)
    if model.num_classes == 0:  # a feature extractor by default: give it a classifier
        torch.manual_seed(0)
        model = timm.create_model(entry.name, pretrained=False, num_classes=1000)
    model.eval()
    example = torch.randn(1, 3, entry.input, entry.input)
    partial = path.with_name(path.stem + ".partial" + path.suffix)
    how = "openvino.convert_model"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if route in ("ov", "ov_static"):
            batch = 1 if route == "ov_static" else -1
            converted = ov.convert_model(model, example_input=example,
                                         input=[(batch, 3, entry.input, entry.input)])
            ov.save_model(converted, str(partial), compress_to_fp16=False)
            partial.with_suffix(".bin").replace(path.with_suffix(".bin"))
        else:
            how = _export_onnx(model, example, partial, static=route == "onnx_static")
    partial.replace(path)
    how_file(path).write_text(how)


def how_file(path: Path, reading: bool = False) -> Path:
    """Where the note on how the model file `path` was exported is kept: `X.onnx.how`, one
    per file. Older caches kept one `X.how` for both the `ov` and the `onnx` file (the last
    export's); reading, an ONNX file without a note of its own gets that one."""
    mine = path.with_name(path.name + ".how")
    old = path.with_suffix(".how")
    if reading and not mine.exists() and path.name == old.stem + ".onnx":
        return old
    return mine


def _export_onnx(model: Any, example: Any, path: Path, static: bool) -> str:
    """`torch.onnx.export` at opset 17, the batch dynamic unless `static`; when the
    TorchScript exporter cannot, torch.export (dynamo). Returns how it was exported."""
    import torch

    names: dict[str, Any] = {"input_names": ["image"], "output_names": ["logits"]}
    dynamic = None if static else {"image": {0: "batch"}, "logits": {0: "batch"}}
    try:
        torch.onnx.export(model, (example,), str(path), opset_version=17, dynamo=False,
                          dynamic_axes=dynamic, **names)
        return "torch.onnx.export (TorchScript), opset 17"
    except Exception as exc:  # the TorchScript exporter cannot: try torch.export
        shapes = None if static else ({0: torch.export.Dim("batch", min=1, max=1024)},)
        torch.onnx.export(model, (example,), str(path), dynamo=True, dynamic_shapes=shapes,
                          external_data=False, **names)
        return f"torch.onnx.export (dynamo), the TorchScript exporter failed: {one_line(exc)}"


# -- one (model, route): build, inspect, insert every method that applies ----------------

def one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[-1] if lines else type(exc).__name__
    if not isinstance(exc, Exception) or type(exc).__module__.startswith("xaigraph"):
        return text[:300]
    return f"{type(exc).__name__}: {text}"[:300]


STAGE_FILE: Path | None = None  # where a child process says what it is doing


def _stage(text: str) -> None:
    if STAGE_FILE is not None:
        STAGE_FILE.write_text(text)


def run_route(entry: Entry, route: str, only_expected: bool = False) -> dict[str, Any]:
    """Build the model, then for every method (the entry's expected ones only, with
    `only_expected`): ok (with its form and timings), not applicable (with inspect's
    reason), or failed (with the error's one line)."""
    import xaigraph

    out: dict[str, Any] = {"methods": {}}
    start = time.perf_counter()
    _stage("building the model")
    try:
        path = model_file(entry, route)
    except Exception as exc:
        out["build_error"] = one_line(exc)
        return out
    out["build_seconds"] = round(time.perf_counter() - start, 1)
    how = how_file(path, reading=True)
    if how.exists():
        out["exported_by"] = how.read_text()
    fmt = "ir" if route in IR_ROUTES else "onnx"
    _stage("inspecting it")
    try:
        info = xaigraph.inspect(path)
    except Exception as exc:
        out["inspect_error"] = one_line(exc)
        info = {"methods": {}}
    out["target"] = info.get("target", {}).get("name")
    for method in METHOD_ORDER:
        if only_expected and method not in entry.methods:
            continue
        verdict = info["methods"].get(method)
        if verdict is not None and not verdict["applies"]:
            out["methods"][method] = {"result": "n/a", "reason": verdict["reason"]}
            continue
        if verdict is None and method not in entry.methods:
            continue
        _stage(f"inserting {method}")
        out["methods"][method] = _insert(path, method, fmt)
    return out


def _insert(path: Path, method: str, fmt: str) -> dict[str, Any]:
    import xaigraph

    start = time.perf_counter()
    try:
        # sanity warn: the zoo measures what the graphs allow; its timm models have random
        # weights and the light ONNX models constant ones, maps `on` would refuse
        result = xaigraph.insert(path, method, output_format=fmt, sanity="warn")
        with tempfile.TemporaryDirectory() as tmp:
            xaigraph.save(result, Path(tmp) / f"model{result.backend.suffix}")
    except Exception as exc:
        return {"result": "failed", "reason": one_line(exc)}
    report = result.report
    return {"result": "ok", "form": report.get("form", ""),
            "saliency_map": report["saliency_map"]["shape"],
            "seconds": round(time.perf_counter() - start, 1)}


# -- the cache -----------------------------------------------------------------------------

def code_digest() -> str:
    h = hashlib.sha256()
    for folder in ("xaigraph", "passes"):
        for p in sorted((ROOT / folder).rglob("*.py")):
            h.update(p.relative_to(ROOT).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def entry_digest(entry: Entry, route: str) -> str:
    key = {"name": entry.name, "source": entry.source, "input": entry.input, "route": route,
           "methods": entry.methods}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def load_results() -> dict[str, Any]:
    path = CACHE / "results.json"
    return json.loads(path.read_text()) if path.exists() else {}


def save_results(results: dict[str, Any]) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = CACHE / "results.json.partial"
    tmp.write_text(json.dumps(results, indent=1, sort_keys=True))
    tmp.replace(CACHE / "results.json")


def run_child(entry: Entry, route: str) -> dict[str, Any]:
    """`run_route` in a child process with a time limit."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", entry.name, route,
               str(out)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIME_LIMIT)
        except subprocess.TimeoutExpired:
            return {"build_error": f"timed out after {TIME_LIMIT} s", "methods": {}}
        if proc.returncode != 0 or not out.exists():
            tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-1:] or [""]
            how = (f"signal {-proc.returncode}" if proc.returncode < 0
                   else f"exit {proc.returncode}")
            if proc.returncode == -9:
                how += ", out of memory?"
            stage = Path(tmp) / "stage"
            where = f" while {stage.read_text()}" if stage.exists() else ""
            return {"build_error": f"crashed ({how}){where} {tail[0][:200]}".strip(),
                    "methods": {}}
        result: dict[str, Any] = json.loads(out.read_text())
        return result


# -- the verdicts --------------------------------------------------------------------------

def route_failures(entry: Entry, outcome: dict[str, Any] | None) -> list[str]:
    """Why the entry fails on this route (empty when every expected method is ok)."""
    if outcome is None:
        return ["not run"]
    for key in ("build_error", "inspect_error"):
        if key in outcome:
            return [outcome[key]]
    reasons = []
    for method in entry.methods:
        got = outcome["methods"].get(method)
        if got is None:
            reasons.append(f"{method}: not run")
        elif got["result"] != "ok":
            reasons.append(f"{method}: {got['reason']}")
    return reasons


def entry_status(entry: Entry, results: dict[str, Any]) -> str:
    problems = []
    for route in entry.routes:
        for reason in route_failures(entry, results.get(f"{entry.name}/{route}")):
            problems.append(f"{route}: {reason}")
    return "ok" if not problems else "; ".join(problems)


def update_statuses(entries: list[Entry], results: dict[str, Any],
                    path: Path = ZOO_FILE) -> None:
    """Rewrite the `status` field of each entry's line in models_zoo.yaml (entries with
    results only; nothing else in the file changes)."""
    text = path.read_text()
    for e in entries:
        if not any(f"{e.name}/{r}" in results for r in e.routes):
            continue
        status = entry_status(e, results)
        quoted = json.dumps(status) if status != "ok" else "ok"
        pattern = re.compile(r"^(  - \{name: " + re.escape(e.name) + r",.*status: ).*\}$",
                             re.MULTILINE)
        text = pattern.sub(lambda m, q=quoted: m.group(1) + q + "}", text)  # type: ignore[misc]
    path.write_text(text)


# -- docs/zoo.md ---------------------------------------------------------------------------

def _versions() -> str:
    import onnxruntime
    import openvino

    import xaigraph

    parts = [f"xaigraph {xaigraph.__version__}", f"OpenVINO {openvino.__version__.split('-')[0]}",
             f"ONNX Runtime {onnxruntime.__version__}"]
    try:
        import timm
        import torch

        parts += [f"torch {torch.__version__.split('+')[0]}", f"timm {timm.__version__}"]
    except ImportError:
        pass
    return ", ".join(parts)


def _cell(got: dict[str, Any] | None, expected: bool) -> str:
    if got is None:
        return "·"
    if got["result"] == "ok":
        return "ok"
    if got["result"] == "n/a":
        return "**n/a**" if expected else "n/a"
    return "**FAIL**"


def write_report(entries: list[Entry], results: dict[str, Any], seconds: float | None) -> str:
    lines = ["# Model zoo", "",
             "Generated by `make zoo` (tools/zoo.py) from models_zoo.yaml: each model is built "
             "by each route, then `xaigraph insert` runs with every method that applies, with "
             "validation (the original outputs compared at batch 1 and 2) and the sanity checks "
             "at `warn` (coverage of graphs, not of weights). timm models have random weights; "
             "the light ONNX models constant ones.", "",
             f"Versions: {_versions()}. Generated {time.strftime('%Y-%m-%d')}"
             + (f"; the last `make zoo` ran for {seconds / 60:.0f} min (cached results are "
                "not redone)." if seconds else "."), "",
             "Routes: `ov` = `openvino.convert_model` from PyTorch (dynamic batch), augmented "
             "as IR; `onnx` = `torch.onnx.export` opset 17 (dynamic batch) or the ONNX file, "
             "augmented as ONNX; `ir` = the ONNX file read by OpenVINO, augmented as IR; "
             "`ov_static`, `onnx_static` = `ov`, `onnx` with the input fixed at batch 1 "
             "(every shape a constant).", "",
             "An entry passes when every method it expects (models_zoo.yaml) inserts and "
             "validates by every route. Cells: ok; n/a = does not apply (bold when expected: "
             "inspect's reason below); FAIL = the insert failed (reason below); · = not run.",
             ""]
    groups: dict[str, list[Entry]] = {}
    for e in entries:
        groups.setdefault(e.group, []).append(e)
    targets = {"cnn": 95, "transformer/hybrid": 85}
    lines += ["## Coverage", "", "| group | entries | pass | share | target |",
              "|---|---|---|---|---|"]
    for group, members in groups.items():
        ok = sum(entry_status(e, results) == "ok" for e in members)
        share = 100 * ok / len(members)
        verdict = "met" if share >= targets[group] else "NOT met"
        lines.append(f"| {group} | {len(members)} | {ok} | {share:.0f} % | "
                     f"≥ {targets[group]} % {verdict} |")
    lines += ["", "## Per family", "", "| family | kind | entries | pass |", "|---|---|---|---|"]
    families: dict[tuple[str, str], list[Entry]] = {}
    for e in entries:
        families.setdefault((e.family, e.kind), []).append(e)
    for (family, kind), members in sorted(families.items()):
        ok = sum(entry_status(e, results) == "ok" for e in members)
        lines.append(f"| {family} | {kind} | {len(members)} | {ok} |")
    methods = [m for m in METHOD_ORDER  # the methods that worked somewhere, or are expected
               if any(((results.get(f"{e.name}/{r}") or {}).get("methods", {}).get(m) or {})
                      .get("result") == "ok" or m in e.methods
                      for e in entries for r in e.routes)]
    lines += ["", "## Models", "",
              "| model | family | input | route | target | " + " | ".join(methods)
              + " | entry |",
              "|---" * (6 + len(methods)) + "|"]
    failures = []
    for e in entries:
        status = entry_status(e, results)
        for route in e.routes:
            outcome = results.get(f"{e.name}/{route}")
            cells = []
            broken = outcome is None or "build_error" in outcome or "inspect_error" in outcome
            for m in methods:
                got = (outcome or {}).get("methods", {}).get(m)
                cells.append(_cell(got, m in e.methods))
                if broken:  # the one reason is listed once, below
                    continue
                if got is not None and got["result"] == "failed":
                    failures.append(f"- {e.name} / {route} / {m}: {got['reason']}")
                elif got is not None and got["result"] == "n/a" and m in e.methods:
                    failures.append(f"- {e.name} / {route} / {m} (n/a): {got['reason']}")
            if outcome is None:
                target = "·"
            elif "build_error" in outcome or "inspect_error" in outcome:
                reason = outcome.get("build_error") or outcome.get("inspect_error")
                failures.append(f"- {e.name} / {route}: {reason}")
                target = "**not built**" if "build_error" in outcome else "**no target**"
            else:
                target = f"`{outcome.get('target')}`"
            verdict = "pass" if status == "ok" else "**fail**"
            lines.append(f"| {e.name} | {e.family} | {e.input} | {route} | {target} | "
                         + " | ".join(cells) + f" | {verdict} |")
    other = [f"- {e.name}: {o['exported_by']}" for e in entries for r in e.routes
             if "dynamo" in (o := results.get(f"{e.name}/{r}") or {}).get("exported_by", "")]
    if other:
        lines += ["", "Exported by torch.onnx.export's dynamo exporter (opset 18) because the "
                  "TorchScript one failed:", "", *other]
    lines += ["", "## Failures and methods that do not apply where expected", ""]
    lines += failures or ["None."]
    return "\n".join(lines) + "\n"


# -- main ----------------------------------------------------------------------------------

def _selected(entries: list[Entry], only: str | None) -> list[Entry]:
    if not only:
        return entries
    names = set(only.split(","))
    unknown = names - {e.name for e in entries}
    if unknown:
        raise SystemExit(f"zoo: no entry named {', '.join(sorted(unknown))} in models_zoo.yaml")
    return [e for e in entries if e.name in names]


def _progress(items: list[tuple[Entry, str]]) -> Iterable[tuple[Entry, str]]:
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, unit="model-route", dynamic_ncols=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated entry names")
    parser.add_argument("--report", action="store_true",
                        help="only rewrite docs/zoo.md and the statuses from cached results")
    parser.add_argument("--redo", action="store_true", help="ignore cached results")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    entries = load_entries()
    if args.child:
        global STAGE_FILE
        name, route, out = args.child
        STAGE_FILE = Path(out).with_name("stage")
        entry = next(e for e in entries if e.name == name)
        Path(out).write_text(json.dumps(run_route(entry, route)))
        return 0

    results = load_results()
    chosen = _selected(entries, args.only)
    start = time.perf_counter()
    todo: list[tuple[Entry, str]] = []
    if not args.report:
        code = code_digest()
        todo = [(e, r) for e in chosen for r in e.routes
                if args.redo or (results.get(f"{e.name}/{r}") or {}).get("digest")
                != f"{entry_digest(e, r)}/{code}"]
        print(f"zoo: {len(todo)} of {sum(len(e.routes) for e in chosen)} model-routes to run "
              f"(the rest are cached in {CACHE})", flush=True)
        for entry, route in _progress(todo):
            outcome = run_child(entry, route)
            outcome["digest"] = f"{entry_digest(entry, route)}/{code}"
            results[f"{entry.name}/{route}"] = outcome
            save_results(results)
    REPORT.parent.mkdir(exist_ok=True)
    elapsed = time.perf_counter() - start if not args.report and todo else None
    REPORT.write_text(write_report(entries, results, elapsed))
    update_statuses(entries, results)
    bad = [e for e in entries if entry_status(e, results) != "ok"]
    print(f"zoo: {len(entries) - len(bad)} of {len(entries)} entries pass; wrote "
          f"{REPORT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
