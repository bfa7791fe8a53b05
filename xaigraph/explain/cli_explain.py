"""`xaigraph explain MODEL INPUT... -o OUT_DIR`: saliency maps and overlays for images.

Exit status: 0 every image explained (or already done), 3 some images could not be read
(one stderr line and one `error` line in results.jsonl each; the others are written), 2 bad
usage or input (a missing MODEL, an unwritable OUT_DIR, an annotation file that does not
parse, OUT_DIR holding another run without --force): one line, nothing written.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from xaigraph.cli_common import (
    FiniteRange,
    OutputPath,
    echo,
    handle_errors,
    print_json,
    succeed,
    terminal,
)
from xaigraph.cli_preprocess import from_flags_kwargs, preprocess_options
from xaigraph.errors import BadInputError
from xaigraph.explain import methods, scales
from xaigraph.explain.blackbox import BlackBoxOptions
from xaigraph.explain.cli_options import blackbox_options
from xaigraph.explain.io.rundir import RunDir, check_writable, digest
from xaigraph.explain.plan import PRECISIONS, ExplainSpec
from xaigraph.explain.render import COLORMAPS

__all__ = ["explain"]

EXIT_SOME_FAILED = 3
MAX_MAPS = 100  # maps per image above which a run is refused without --max-maps


def check_report_place(folder: Path) -> None:
    """`--report`: FOLDER/report must be absent or an xaigraph report (replaced at the
    end); checked before anything is written."""
    from xaigraph.errors import OutputExistsError
    from xaigraph.explain.report import MARKER

    place = folder / "report"
    if (place.exists() or place.is_symlink()) and not (place / MARKER).is_file():
        raise OutputExistsError(f"{place} exists and is not an xaigraph report; --report "
                                "would replace it (remove it or choose another -o)")


def build_report(folder: Path, as_json: bool) -> Path:
    """`--report`: the report of FOLDER built into FOLDER/report (an earlier one replaced);
    its index.html."""
    from xaigraph.explain.report import build_report as build

    return build(folder, force=True, progress=show_progress(as_json))


def show_progress(as_json: bool) -> bool:
    """A progress bar only on a terminal, never with --json or in CI."""
    return (not as_json and sys.stderr.isatty()
            and not os.environ.get("CI") and os.environ.get("TERM") != "dumb")


precision_option = click.option(
    "--precision", type=click.Choice(PRECISIONS), default="f32", show_default=True,
    help="OpenVINO's inference precision: f32 (maps as the reference computes them), bf16 "
         "or f16 (faster on CPUs that have them: about 2x for RISE with AMX), auto (the "
         "device's default). Picks OpenVINO for an .onnx.")


@click.command("explain")
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", "out_dir", required=True, type=OutputPath(),
              help="Folder for maps/, overlays/, raw/, results.jsonl and run.json.")
@click.option("-m", "--method", type=click.Choice(methods.choices()), default="auto",
              show_default=True, help=methods.auto_help())
@click.option("--targets", default="predicted", show_default=True, metavar="SPEC",
              help="Classes with a map: predicted (top-1), topk:K, all, or a list of indices "
                   "or names (3,17 or 'tiger cat,tabby').")
@click.option("--runtime", type=click.Choice(["openvino", "onnxruntime"]),
              help="OpenVINO (.xml, .onnx) or ONNX Runtime (.onnx; its default).")
@precision_option
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Images per inference for a dynamic-batch model (a static model runs "
                   "its batch, with asynchronous requests). Black-box methods take one "
                   "image at a time and batch its masks.")
@click.option("--colormap", type=click.Choice(COLORMAPS), default="jet", show_default=True,
              help="jet, cubehelix (perceptual: brightness rises monotonically) or gray.")
@click.option("--opacity", type=FiniteRange(0.0, 1.0), default=0.5, show_default=True,
              help="Of the map over the photo in overlays.")
@click.option("--no-overlay", is_flag=True, help="Write the colour maps only.")
@click.option("--map-scale", type=click.Choice(scales.MODES), default=scales.DEFAULT,
              show_default=True,
              help="The overlays' colours: score (the map times the class's probability: a "
                   "6 % class is faint), map (each map min-max on its own), image (the "
                   "maps of an image on one scale); run is the report's view. maps/ "
                   "always hold each map on its own scale.")
@click.option("--no-legend", is_flag=True,
              help="Overlays without the colour scale margin: the photo's exact size.")
@click.option("--low-confidence", type=FiniteRange(0.0, 1.0),
              default=scales.LOW_CONFIDENCE, show_default=True, metavar="SCORE",
              help="Maps of classes scoring below this are marked low confidence.")
@click.option("--raw", is_flag=True, help="Also write the float maps as raw/KEY_CLASS.npy.")
@click.option("--max-maps", type=click.IntRange(min=1), default=MAX_MAPS, show_default=True,
              metavar="N", help="Refuse targets that ask for more maps per image (--targets "
                                "all on a 1000-class model asks for 1000).")
@click.option("--class-output", metavar="NAME", help="The output holding the class scores.")
@click.option("--target-layer", metavar="NAME", help="Target layer for in-memory insertion.")
@click.option("--force", is_flag=True,
              help="Redo every image, also in an OUT_DIR of another model or other options.")
@preprocess_options
@blackbox_options
@click.option("--engine", "engine_name", type=click.Choice(["local", "ray"]), default="local",
              show_default=True,
              help="local: threads and the runtime on this machine; ray: a Ray Data pipeline "
                   "(pip install 'xaigraph[ray]'), the same files and results.jsonl (a colour "
                   "may differ by one level where an image's batch differs).")
@click.option("--ray-address", metavar="ADDRESS",
              help="--engine ray: the Ray cluster to join (ray://HOST:10001, auto); default "
                   "a local Ray instance started and stopped by the command.")
@click.option("--ray-timeout", type=click.FloatRange(min=0.1, max=86400), default=30.0,
              show_default=True, metavar="SECONDS",
              help="--ray-address: how long to wait for the cluster to answer.")
@click.option("--ray-actors", type=click.IntRange(min=1), metavar="N",
              help="--engine ray: inference actors, one compiled model each (default: one "
                   "per node).")
@click.option("--report", "with_report", is_flag=True,
              help="At the end, build the HTML report into OUT_DIR/report (as xaigraph "
                   "report OUT_DIR does), also when some images failed.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option("--debug", is_flag=True, help="Verbose log; tracebacks on errors.")
@handle_errors
def explain(model: Path, inputs: tuple[str, ...], out_dir: Path, method: str, targets: str,
            runtime: str | None, precision: str, batch_size: int, colormap: str, opacity: float,
            no_overlay: bool, map_scale: str, no_legend: bool, low_confidence: float,
            raw: bool, max_maps: int, class_output: str | None,
            target_layer: str | None,
            force: bool, preprocess_flags: dict[str, Any], engine_name: str,
            ray_address: str | None, ray_timeout: float, ray_actors: int | None,
            with_report: bool,
            as_json: bool, debug: bool, **blackbox: Any) -> None:
    """Saliency maps and overlays of INPUT images (files, folders, list files, COCO or VOC
    annotations, - for paths on stdin) by MODEL (.xml or .onnx, augmented or plain).

    \b
    Writes into OUT_DIR:
      maps/KEY_CLASS_SCORE.png      colour map, RGBA at the image's size
      overlays/KEY_CLASS_SCORE.png  the map over the image, its colour scale below
      raw/KEY_CLASS.npy             --raw: the map as the model gave it
      results.jsonl                 one line per image; run.json: the model card
      report/index.html             --report: the HTML report
    A second run in OUT_DIR skips the images done with the same model and options.

    Exit status: 0 all done, 3 some images could not be read (the rest written), 2 bad
    usage or input (nothing written).
    """
    from xaigraph.explain.inputs import collect
    from xaigraph.explain.plan import prepare

    start = time.perf_counter()
    ray_options = _ray_options(engine_name, ray_address, ray_actors, ray_timeout)
    dataset = collect(list(inputs), stdin=sys.stdin)
    check_writable(out_dir)
    if with_report:
        check_report_place(out_dir)
    options = BlackBoxOptions.from_cli(blackbox)
    spec = prepare(model, method=method, targets=targets, runtime=runtime,
                   preprocess_flags=from_flags_kwargs(preprocess_flags),
                   labels=preprocess_flags.get("pre_labels"), class_output=class_output,
                   target_layer=target_layer, batch_size=batch_size, raw=raw,
                   overlay=not no_overlay, colormap=colormap, opacity=opacity,
                   blackbox=options, precision=precision, map_scale=map_scale,
                   legend=not no_legend, low_confidence=low_confidence,
                   truth=any(item.labels or item.boxes for item in dataset.items))
    _check_maps(spec, len(dataset.items), max_maps)
    card = spec.card()
    card["digest"] = digest(card)
    out = RunDir(out_dir, card, force=force)
    out.check()
    counts = _run(spec, dataset.items, out, ray_options, show_progress(as_json))
    summary = {
        "out_dir": str(out_dir), "run": out.run, "model": str(model), "method": spec.method,
        "method_reason": spec.method_reason, "runtime": spec.runtime,
        "images": len(dataset.items), "explained": counts["ok"] - out.skipped,
        "skipped": out.skipped, "errors": counts["error"],
        "seconds": round(time.perf_counter() - start, 3), "overlay": not no_overlay,
    }
    if with_report:
        summary["report"] = str(build_report(out_dir, as_json))
    _report(summary, as_json)


def _run(spec: Any, items: list[Any], out: RunDir, ray_options: Any, progress: bool
         ) -> dict[str, int]:
    """`runloop.run` with the images' bar (and RISE's masks bar) on a terminal, and each
    image's error as one stderr line."""
    from tqdm import tqdm

    from xaigraph.explain import runloop

    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(tqdm(total=len(items), unit="img", file=sys.stderr,
                                       dynamic_ncols=True, disable=not progress))

        def started(explainer: Any) -> None:
            masks_bar = _masks_bar(spec, explainer, bar.disable)
            if masks_bar is not None:
                stack.callback(masks_bar.close)

        def shown(record: Any) -> None:
            if not record.ok:
                (bar.write if not bar.disable else _stderr)(
                    terminal(f"xaigraph: error: {record.error}"), file=sys.stderr)
            bar.update(1)

        return runloop.run(spec, items, out, ray=ray_options, on_record=shown,
                           on_start=started)


def _masks_bar(spec: Any, explainer: Any, disabled: bool) -> Any:
    """A second bar under the images' for RISE / D-RISE on the local engine: the masks of the
    image being explained (thousands of inferences an image), with their rate and ETA."""
    if disabled or explainer is None or not spec.method_info.masks:
        return None
    from tqdm import tqdm

    total = spec.blackbox_options.resolved.num_masks
    masks = tqdm(total=total, unit="mask", desc="masks", position=1, leave=False,
                 file=sys.stderr, dynamic_ncols=True)

    def done(count: int) -> None:
        masks.update(count)
        if masks.n >= total:  # the image's last batch: the next image starts at 0
            masks.reset()

    explainer.on_masks = done
    return masks


# -- --engine ray (the Ray engine's owner: xaigraph/explain/ray_engine.py) -------------------

def _ray_options(engine_name: str, address: str | None, actors: int | None,
                 timeout: float = 30.0) -> Any:
    """The `RayOptions` of `--engine ray` (Ray checked before anything is written); None
    for the local engine, which takes no --ray-* option."""
    from xaigraph.errors import BadInputError

    if engine_name != "ray":
        if address is not None or actors is not None:
            raise BadInputError("--ray-address and --ray-actors need --engine ray")
        return None
    from xaigraph.explain import ray_engine

    ray_engine.import_ray()
    options = ray_engine.RayOptions(address=address, actors=actors, timeout=timeout)
    if address is not None:  # an unreachable cluster: one line before the model is read
        ray_engine.reachable(address, timeout)
    return options


def _check_maps(spec: ExplainSpec, images: int, max_maps: int) -> None:
    """Refuse a run whose targets ask for more than `max_maps` maps per image, saying what
    it would write (before anything is)."""
    n = spec.maps_per_image
    if n is None or n <= max_maps:
        return
    files = n * (1 + int(spec.overlay) + int(spec.raw)) * images
    asked = getattr(spec.targets, "base", spec.targets)  # AndTruth: the --targets given
    raise BadInputError(f"--targets {asked.text()} asks for {n} maps per image "
                        f"({files} files for the {images} image{'s' * (images != 1)} given); "
                        f"pass --max-maps {n} to write them")


def _stderr(text: str, file: Any = None) -> None:
    echo(text, err=True)


def _report(summary: dict[str, Any], as_json: bool) -> None:
    failed = summary["errors"]
    if as_json:
        if failed:
            print_json({"ok": False, "exit_code": EXIT_SOME_FAILED,
                        "error": {"kind": "bad-images", "message":
                                  f"{failed} of {summary['images']} images could not be read"},
                        **summary})
        else:
            succeed(summary)
    else:
        echo(f"method      {summary['method']} ({summary['method_reason']})")
        echo(f"images      {summary['images']}: {summary['explained']} explained, "
             f"{summary['skipped']} already done, {failed} failed")
        echo(f"wrote       {summary['out_dir']}/ (results.jsonl, run.json, maps/"
             f"{', overlays/' if summary['overlay'] else ''})")
        echo(f"time        {summary['seconds']:.2f}s")
        if "report" in summary:
            echo(f"report      {summary['report']}  <- open this in a browser")
    if failed:
        if not as_json:
            echo(f"xaigraph: error: {failed} of {summary['images']} images could not be "
                       "read (their error lines are in results.jsonl)", err=True)
        sys.exit(EXIT_SOME_FAILED)
