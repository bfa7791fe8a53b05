"""Command line: `xaigraph insert | inspect | strip | demo`, and the runtime layer's
`explain | eval | report` (registered from `xaigraph.explain.commands`, the compiler's one
import of the runtime layer). The installed command runs `xaigraph.__main__.main`, which
sets up signal handling before importing this module; errors, `--json` and usage errors
are handled as in every command (`xaigraph.cli_common`)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from xaigraph import api, model_info, model_io, torch_models
from xaigraph.backends import backend_for_path, get_backend
from xaigraph.cli_common import (
    Group,
    debug_option,
    echo,
    handle_errors,
    json_option,
    print_json,
    succeed,
)
from xaigraph.cli_preprocess import any_given, flag_labels, from_flags_kwargs, preprocess_options
from xaigraph.demo import run_demo
from xaigraph.errors import BadInputError, XaiGraphError, file_error
from xaigraph.explain.commands import COMMANDS, for_inspect
from xaigraph.methods import METHODS
from xaigraph.preprocess import Preprocess
from xaigraph.samples import read_samples
from xaigraph.sanity import LEVELS as SANITY_LEVELS
from xaigraph.sanity import describe as describe_sanity
from xaigraph.version import __version__

__all__ = ["cli"]

def _progress(enabled: bool) -> Callable[[str], None] | None:
    if not enabled:
        return None

    def show(step: str) -> None:
        echo(f"  ... {step}", err=True)

    return show


def _fmt_float(x: float) -> str:
    return "0" if x == 0 else f"{x:.2g}"


def _print_insert(report: dict[str, Any]) -> None:
    if report["status"] == "already-augmented":
        stamp = report["stamp"]
        echo(
            f"{report['input']} is already augmented by xaigraph {stamp.get('version', '?')} "
            f"(method {stamp.get('method')}, target {stamp.get('target_layer')}); "
            "nothing written"
        )
        return
    if report.get("replaced"):
        echo(f"replaced    {report['replaced']['pipeline']} (--replace)")
    t = report["target"]
    sal = report["saliency_map"]
    echo(f"method      {report['method']}: {report['form']}")
    echo(f"target      {t['name']} {t['declared_shape']}" + (" (--target-layer)" if t["forced"]
                                                             else ""))
    echo(f"saliency    output '{sal['name']}' {sal['type']} {sal['shape']}")
    feature = report.get("feature_vector")
    if feature:
        worst = max((r["max_abs"] for r in feature["runs"]), default=0.0)
        echo(f"feature     output '{feature['name']}' {feature['type']} {feature['shape']} "
             f"(pooling {feature['pool']}; checked, max |diff| {_fmt_float(worst)})")
    val = report["validation"]
    if val.get("skipped"):
        echo("validation  skipped (--no-validate)")
    else:
        parts = []
        for run in val["runs"]:
            worst = max((o["max_abs"] for o in run["outputs"]), default=0.0)
            parts.append(f"{run['label']}: max |diff| {_fmt_float(worst)}")
        echo("validation  passed; " + "; ".join(parts))
    check = report.get("sanity") or {}
    echo("sanity      " + ("skipped (--sanity off)" if check.get("skipped")
                           else describe_sanity(check)))
    recorded = report.get("model_info")
    if recorded:
        pre, labels = recorded["preprocess"], recorded["labels"]
        what = [] if pre is None else [
            f"{pre['resize']} {pre['size'][0]}x{pre['size'][1]}, mean {list(pre['mean'])}, std "
            f"{list(pre['std'])}, scale {pre['scale']:g}, {pre['channels']}"]
        what += [] if labels is None else [f"{labels} labels"]
        echo("recorded    " + ("; ".join(what) or "nothing") + " (--preprocess)")
    timings = report["timings"]
    echo("time        " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    if report.get("output"):
        extra = " (+ .bin)" if report["output"].endswith(".xml") else ""
        echo(f"wrote       {report['output']}{extra}")


@click.group(name="xaigraph", cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="xaigraph")
def cli() -> None:
    """Embed saliency maps into vision models (OpenVINO IR or ONNX in; IR or ONNX out)."""


@cli.command()
@click.argument("model", type=click.Path(dir_okay=True, path_type=Path))
@click.option("-o", "--output", "out", required=True, type=click.Path(path_type=Path),
              help="Output: .xml writes OpenVINO IR (its .bin beside it), from an .xml or "
                   ".onnx MODEL; .onnx writes ONNX, from an .onnx MODEL.")
@click.option("-m", "--method", type=click.Choice(list(METHODS)), default="reciprocam",
              show_default=True, help="Saliency method.")
@click.option("--target-layer", metavar="NAME",
              help="Op or tensor name of the target feature map (overrides detection); for "
                   "a detector, its per-level class-score maps as NAME,NAME,...")
@click.option("--num-anchors", type=click.IntRange(min=1), metavar="A",
              help="Anchors per location of a detector's class-score maps (with "
                   "--target-layer).")
@click.option("--targets", metavar="SPEC",
              help="Maps only for some classes: topk:K (each image's K best, with their indices "
                   "in a saliency_classes output) or a list like 3,17,281 (or class names, "
                   "'tiger cat,tabby', from the model's labels or ImageNet's).")
@click.option("--class-output", metavar="NAME",
              help="The output holding the class scores, when the model has several "
                   "(detected otherwise).")
@click.option("--example-input", metavar="SHAPE",
              help="A PyTorch MODEL (.pt, .pth TorchScript; .pt2 torch.export) is converted "
                   "by tracing it on an input of this shape, e.g. 1,3,224,224 (needs torch).")
@click.option("--no-scaling", is_flag=True, help="Keep raw f32 maps instead of u8 0..255.")
@click.option("--feature-vector", is_flag=True,
              help="Also add a feature_vector output [N, C]: the pooled embedding the "
                   "classifier reads (as the OpenVINO Model API and OTX models have it).")
@click.option("--no-validate", is_flag=True, help="Skip the output comparison.")
@click.option("--sanity", type=click.Choice(list(SANITY_LEVELS)), default="on",
              show_default=True,
              help="Sanity checks of the map on probe inputs (the samples, else generated "
                   "images): on refuses a map without information (constant, the same for "
                   "every input or every class); warn only warns; strict also refuses a map "
                   "that barely changes when the classifier's weights are random; off skips "
                   "them.")
@click.option("--sample", "samples", multiple=True, type=click.Path(path_type=Path),
              help="An input to validate with as well (repeatable): a .npy array, or an "
                   "image made into the model's input with its recorded preprocessing "
                   "(and the preprocessing flags).")
@click.option("--preprocess", "record", is_flag=True,
              help="Record the model's preprocessing with the preprocessing flags over it, "
                   "and labels, in OUT's metadata (OpenVINO Model API model_info keys).")
@preprocess_options
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
@click.option("--replace", is_flag=True,
              help="MODEL is already augmented: take that explanation out and insert this one.")
@json_option()
@debug_option
@handle_errors
def insert(model: Path, out: Path, method: str, target_layer: str | None,
           num_anchors: int | None, targets: str | None, class_output: str | None,
           example_input: str | None, no_scaling: bool, feature_vector: bool,
           no_validate: bool, sanity: str, samples: tuple[Path, ...], record: bool,
           preprocess_flags: dict[str, Any], force: bool, replace: bool, as_json: bool,
           debug: bool) -> None:
    """Add a `saliency_map` output to MODEL (.xml or .onnx) and write it to OUT.

    \b
    Supported pairs (by suffix):
      MODEL.xml  -> OUT.xml    OpenVINO IR to IR
      MODEL.onnx -> OUT.xml    ONNX read by OpenVINO, written as IR
      MODEL.onnx -> OUT.onnx   ONNX to ONNX (validated on ONNX Runtime)
      MODEL.pt   -> OUT.xml    PyTorch (.pt, .pth, .pt2) converted by OpenVINO
      MODEL.pt   -> OUT.onnx   PyTorch exported to ONNX (torch.onnx.export)
    An IR cannot be written as ONNX; other suffixes are refused.

    Exit status: 0 written (or MODEL was already augmented with this method and these
    options: nothing written), 1 validation failed, 2 bad input (also: MODEL is augmented
    otherwise, see --replace; the map failed --sanity). Nothing is written unless every
    step succeeded.
    """
    backend = backend_for_path(out)
    loaded = _read_model(model, out, backend, example_input, force)
    given = any_given(preprocess_flags)
    pre = labels = None
    if given and not (record or samples):
        raise BadInputError(f"{given[0]} is used with --preprocess (to record it) or --sample "
                            "(to read an image); give one of them")
    if "--labels" in given and not record:
        raise BadInputError("--labels is used with --preprocess (to record the names)")
    if record or (samples and given):
        pre = _flag_preprocess(loaded.model, preprocess_flags)
    if record:
        labels = flag_labels(preprocess_flags, None) or model_info.read(loaded.model).labels
    read = read_samples(samples, get_backend(loaded.backend, loaded.external_data),
                        loaded.model, pre if given else None)
    result = api.insert(
        loaded, method, target_layer=target_layer, scaling=not no_scaling,
        validate=not no_validate, samples=[s.array for s in read],
        progress=_progress(not as_json and sys.stderr.isatty()), output_format=backend,
        targets=targets, num_anchors=num_anchors, replace=replace, class_output=class_output,
        record_preprocess=pre if record else None, record_labels=labels,
        feature_vector=feature_vector, sanity=sanity)
    if read:
        result.report["samples"] = [s.as_dict() for s in read]
    if result.changed:
        result.report["output"] = str(_save(result, out, force))
    if as_json:
        succeed(result.report)
    else:
        _print_insert(result.report)


def _read_model(model: Path, out: Path, backend: str, example_input: str | None,
                force: bool) -> model_io.LoadedModel:
    """MODEL read for `backend` (a PyTorch file converted, traced on `--example-input`),
    once OUT is known to be writable."""
    if torch_models.is_torch_file(model):
        model_io.check_output_path(out, force=force, inputs=[model])
        loaded = torch_models.load(model, example_input, backend)
    elif example_input is not None:
        raise BadInputError("--example-input is for a PyTorch MODEL (.pt, .pth or .pt2)")
    else:
        loaded = model_io.load_model(model, backend)
    model_io.check_output_path(out, force=force, inputs=loaded.files)
    return loaded


def _flag_preprocess(model: Any, flags: dict[str, Any]) -> Preprocess:
    """The model's preprocessing (or its input's defaults) with the flags over it."""
    info = model_info.read(model)
    base = info.preprocess or info.input
    if base is None:
        raise BadInputError("the model's input is not an image ([N, 3, H, W] or "
                            "[N, H, W, 3]), so it has no image preprocessing to record or use")
    return model_info.from_flags(base, **from_flags_kwargs(flags))


def _save(result: api.InsertResult, out: Path, force: bool) -> Path:
    """`api.save`, with a failure to write (an OS error, or OpenVINO's own for one) told
    as the real reason, naming OUT rather than a temporary file."""
    try:
        return api.save(result, out, force=force)
    except XaiGraphError:
        raise
    except (OSError, RuntimeError) as exc:
        raise file_error(exc, out, "cannot write") from exc


@cli.command()
@click.argument("model", type=click.Path(dir_okay=True, path_type=Path))
@click.option("--target-layer", metavar="NAME", help="Inspect with this target instead.")
@click.option("--class-output", metavar="NAME", help="The output holding the class scores.")
@json_option()
@debug_option
@handle_errors
def inspect(model: Path, target_layer: str | None, class_output: str | None, as_json: bool,
            debug: bool) -> None:
    """Show MODEL's inputs, outputs, target layer, head, candidates and applicable methods."""
    info = api.inspect(model, target_layer=target_layer, class_output=class_output)
    info.update(for_inspect(info))
    if as_json:
        succeed(info)
        return
    echo(f"model       {info['model']}")
    for p in info["inputs"]:
        echo(f"input       {p['name']} {p['type']} {p['shape']}")
    for p in info["outputs"]:
        echo(f"output      {p['name']} {p['type']} {p['shape']}")
    for i, line in enumerate(info.get("stamp_text", [])):
        echo(f"{'stamp' if i == 0 else '':<12}{line}")
    if info.get("stamp_problem"):
        echo(f"stamp       none: xai metadata ignored ({info['stamp_problem']})")
    if info.get("detector"):
        echo(f"detector    {info['detector']}")
    elif info.get("num_classes") is not None:
        echo(f"scores      {info['class_scores']}, {info['num_classes']} classes")
    else:
        echo("scores      none found (--class-output NAME names them)")
    _echo_target(info)
    echo("methods")
    width = max(len(name) for name in info["methods"])
    for name, m in info["methods"].items():
        text = m["form"] if m["applies"] else f"does not apply: {m['reason']}"
        echo(f"  {name:<{width}} {text}")
    echo(f"auto        explain --method auto takes {info['auto']['method']}: "
         f"{info['auto']['why']}")


def _echo_target(info: dict[str, Any]) -> None:
    """inspect's target, head and candidates (or why no target was found)."""
    t = info["target"]
    if t is None:
        echo(f"target      none: {info['target_problem']}")
        return
    echo(f"target      {t['name']} ({t['type']}) {t['shape']}"
         + (" (--target-layer)" if t["forced"] else ""))
    echo(f"head        {' > '.join(info['head'])}")
    echo("candidates  (nearest the output first)")
    cands = info["candidates"]
    chosen = next((i for i, c in enumerate(cands) if c["reason"] == "chosen"), len(cands))
    shown = cands[: chosen + 4]
    for c in shown:
        echo(f"  {c['name']} {c['shape']}: {c['reason']}")
    if len(cands) > len(shown):
        echo(f"  ... {len(cands) - len(shown)} more, further from the output (--json lists all)")


@cli.command()
@click.argument("model", type=click.Path(dir_okay=True, path_type=Path))
@click.option("-o", "--output", "out", required=True, type=click.Path(path_type=Path),
              help="Output: .xml (IR) or .onnx (from an .onnx MODEL), as for insert.")
@click.option("--no-validate", is_flag=True, help="Skip the output comparison.")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
@json_option()
@debug_option
@handle_errors
def strip(model: Path, out: Path, no_validate: bool, force: bool, as_json: bool,
          debug: bool) -> None:
    """Write the original model an augmented MODEL was made from to OUT.

    Removes the outputs xaigraph added and every op only they needed, puts back what the
    insertion changed (as its stamp records), removes the stamp, and checks on seeded inputs
    that every original output is unchanged. Exit status: 0 written, 1 an output differs,
    2 bad input (also: MODEL is not augmented). Nothing is written unless every step
    succeeded.
    """
    backend = backend_for_path(out)
    loaded = model_io.load_model(model, backend)
    model_io.check_output_path(out, force=force, inputs=loaded.files)
    result = api.strip(loaded, validate=not no_validate, output_format=backend)
    path = api.save(result, out, force=force)
    result.report["output"] = str(path)
    if as_json:
        print_json(result.report)
        return
    stamp = result.report["stamp"]
    echo(f"stripped    {stamp['method']} (xaigraph {stamp['version']}): removed "
               f"{', '.join(result.report['removed_outputs'])}")
    val = result.report["validation"]
    echo("validation  " + ("skipped (--no-validate)" if val.get("skipped") else
                                 "passed: the original outputs are unchanged"))
    echo(f"wrote       {path}" + (" (+ .bin)" if path.suffix == ".xml" else ""))


@cli.command()
@click.option("-o", "--output", "out", type=click.Path(path_type=Path), default=Path("demo_out"),
              show_default=True, help="Folder for the augmented model, picture and summary.")
@click.option("-m", "--method", type=click.Choice(list(METHODS)), default="reciprocam",
              show_default=True, help="Saliency method.")
@click.option("--force", is_flag=True, help="Overwrite earlier demo outputs.")
@json_option("Print the summary as JSON on stdout.")
@debug_option
@handle_errors
def demo(out: Path, method: str, force: bool, as_json: bool, debug: bool) -> None:
    """Explain the bundled ImageNet EfficientNet-Lite0 on a photo of a cat.

    Inserts the saliency map into the bundled ONNX model, writes the augmented IR, runs it
    once on the bundled photo and draws the top-1 class map over it (chelsea_saliency.png).
    """
    summary = run_demo(out, method=method, force=force,
                       progress=_progress(not as_json and sys.stderr.isatty()))
    if as_json:
        succeed(summary)
        return
    echo(f"model       bundled EfficientNet-Lite0 (ImageNet) + {method}: {summary['form']}")
    echo(f"target      {summary['target_layer']} {summary['target_shape']}")
    val = summary["validation"]
    echo("validation  " + ("passed" if val.get("passed") else "skipped"))
    echo("top-5       " + ", ".join(f"{t['label']} {100 * t['probability']:.1f}%"
                                   for t in summary["top5"]))
    sal = summary["saliency_map"]
    echo(f"saliency    {sal['dtype']} {sal['shape']}, peak at cell {tuple(sal['peak'])}")
    files = summary["files"]
    echo(f"wrote       {files['model_xml']} (+ .bin)")
    echo(f"            {files['panel_png']}  <- open this: the photo and the map over it")
    echo(f"            {files['summary_json']}")


for _command in COMMANDS:  # the runtime layer's explain, eval, report
    cli.add_command(_command)
