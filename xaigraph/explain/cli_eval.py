"""`xaigraph eval MODEL DATA... -o DIR --methods ...`: how good are the maps?

Exit status: 0 written, 2 bad usage or input (one line on stderr, nothing written).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from xaigraph.cli_common import (
    FiniteRange,
    OutputPath,
    debug_option,
    echo,
    handle_errors,
    json_option,
    succeed,
)
from xaigraph.explain.blackbox import BlackBoxOptions
from xaigraph.explain.cli_explain import (
    build_report,
    check_report_place,
    precision_option,
    show_progress,
)
from xaigraph.explain.cli_options import blackbox_options
from xaigraph.explain.methods import REGISTRY

__all__ = ["eval_command"]


@click.command("eval")
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", "out_dir", required=True, type=OutputPath(),
              help="EVAL_DIR: metrics.json, metrics.md, an explain OUT_DIR per method.")
@click.option("--methods", default="", metavar="LIST",
              help="Methods to evaluate, comma-separated (reciprocam,activationmap,rise); "
                   f"any of {', '.join(REGISTRY)}.")
@click.option("--metrics", "metric_list", default="all", show_default=True, metavar="LIST",
              help="all, or some of pointing_game, mass_in_box, insertion_auc, deletion_auc, "
                   "average_drop, coherency, complexity, adcc (adcc: its four).")
@click.option("--steps", type=int, default=30, show_default=True,
              help="Insertion / deletion steps.")
@click.option("--tolerance", type=FiniteRange(min=0.0), default=15.0, show_default=True,
              help="Pointing-game tolerance in pixels at 224 px (scaled with the image).")
@click.option("--from-explain", "from_explain", multiple=True,
              type=click.Path(path_type=Path), metavar="DIR",
              help="An explain OUT_DIR (made with --raw) to reuse; repeatable.")
@click.option("--runtime", type=click.Choice(["openvino", "onnxruntime"]),
              help="Runtime (default: ONNX Runtime for .onnx, OpenVINO for .xml).")
@click.option("--reference", "reference", type=click.Path(path_type=Path), metavar="FP32_MODEL",
              help="The model MODEL was compressed from (FP16, INT8): compare the maps and "
                   "predictions with its (EVAL_DIR/reference/<method>/).")
@precision_option
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Images per inference when explaining.")
@click.option("--resamples", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Bootstrap resamples for the 95 % intervals.")
@click.option("--force", is_flag=True,
              help="Redo explain OUT_DIRs made with other options; replace a metrics.json "
                   "or metrics.md that eval did not write.")
@blackbox_options
@click.option("--report", "with_report", is_flag=True,
              help="At the end, build the HTML report into DIR/report (as xaigraph report "
                   "DIR does).")
@json_option()
@debug_option
@handle_errors
def eval_command(model: Path, inputs: tuple[str, ...], out_dir: Path, methods: str,
                 metric_list: str, steps: int, tolerance: float,
                 from_explain: tuple[Path, ...], runtime: str | None,
                 reference: Path | None, precision: str, batch_size: int,
                 resamples: int, force: bool, with_report: bool, as_json: bool,
                 debug: bool, **blackbox: Any) -> None:
    """Measure the saliency maps of MODEL on DATA (the INPUTs explain takes; ground truth
    from COCO JSON, VOC XML, YOLO txt or classes:DIR) with the pointing game, the mass in
    the boxes, insertion / deletion AUC and ADCC; a 95 % bootstrap interval with every mean.

    \b
    Writes into DIR:
      metrics.json   per image, per class, per method; summary; each metric's paper
      metrics.md     the tables: methods side by side, and per class
      <method>/      the explain OUT_DIR of each method (made, or linked to --from-explain)
      reference/     --reference: the reference model's OUT_DIR per method; metrics.json's
                     "reference": rank correlation and top-10 % IoU of the maps, top-1 agreement
      report/        --report: the HTML report (report/index.html)

    Exit status: 0 written, 2 bad usage or input (nothing written).
    """
    # here, not at the top: the metrics load scipy, which every other command would pay for
    from xaigraph.explain.evaluate import EvalOptions, evaluate, parse_metrics, table

    names = tuple(m.strip() for m in methods.split(",") if m.strip())
    options = EvalOptions(methods=names, metrics=parse_metrics(metric_list), steps=steps,
                          tolerance=tolerance, from_explain=from_explain, runtime=runtime,
                          batch_size=batch_size, force=force, resamples=resamples,
                          blackbox=BlackBoxOptions.from_cli(blackbox), precision=precision,
                          reference=reference)
    if with_report:
        check_report_place(out_dir)
    doc = evaluate(model, list(inputs), out_dir, options, stdin=sys.stdin,
                   progress=show_progress(as_json))
    index = build_report(out_dir, as_json) if with_report else None
    if as_json:
        succeed({"out_dir": str(out_dir), **{k: doc[k] for k in (
            "methods", "metrics", "bootstrap", "summary", "per_class", "images_evaluated",
            "explain_dirs", "seconds")},
            **({"reference": {k: v for k, v in doc["reference"].items() if k != "images"}}
               if "reference" in doc else {}),
            **({"report": str(index)} if index else {})})
        return
    echo(table(doc), nl=False)
    echo(f"wrote       {out_dir}/metrics.json, {out_dir}/metrics.md "
               f"({doc['images_evaluated']} images, {doc['seconds']:.1f}s)")
    if index is not None:
        echo(f"report      {index}  <- open this in a browser")
