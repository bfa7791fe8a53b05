"""`xaigraph report DIR [-o OUT]`: the static HTML report of an explain or eval output.

The builder is `xaigraph.explain.report.build`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from xaigraph.cli_common import (
    OutputPath,
    debug_option,
    echo,
    handle_errors,
    json_option,
    print_json,
)
from xaigraph.explain.report import build

__all__ = ["report"]


@click.command()
@click.argument("folder", metavar="DIR", type=click.Path(path_type=Path))
@click.option("-o", "--output", "out", type=OutputPath(), default=None,
              help="The report folder (default: DIR/report). Inside DIR the report refers to "
                   "DIR's maps; elsewhere it copies them.")
@click.option("--top-k", type=click.IntRange(min=1), default=None,
              help="Predicted labels per image for the TP/FP/FN flags (default: as many as "
                   "the image has ground-truth labels).")
@click.option("--title", default=None, help="The page title (default: the folder's name).")
@click.option("--force", is_flag=True, help="Replace an existing report.")
@click.option("--absolute-paths", is_flag=True,
              help="Show the images' and the model's paths as the run wrote them (absolute "
                   "ones included). Without it the report shows no absolute local path: "
                   "an absolute image path relative to DIR, the model by its file name and "
                   "digest, DIR by its name.")
@json_option()
@debug_option
@handle_errors
def report(folder: Path, out: Path | None, top_k: int | None, title: str | None, force: bool,
           absolute_paths: bool, as_json: bool, debug: bool) -> None:
    """Build a static HTML report (DIR/report/index.html) from an explain OUT_DIR or an eval
    DIR: a gallery with thumbnails, TP/FP/FN flags, every class's map over the original with
    an opacity slider, filters, sorting, the metric tables and the model card. It opens from
    the file system; nothing is fetched from a network.

    Exit status: 0 built, 2 bad input (DIR is neither an explain nor an eval output, a
    malformed results.jsonl line, an existing report without --force). Nothing is written
    unless the whole report was built.
    """
    built = build(folder, out, force=force, top_k=top_k, title=title,
                  progress=not as_json and sys.stderr.isatty(), absolute_paths=absolute_paths)
    if as_json:
        print_json({"ok": True, "exit_code": 0, "report": str(built.index),
                    "images": built.images, "failed": built.failed,
                    "methods": built.methods, "seconds": round(built.seconds, 3)})
        return
    echo(f"report      {built.images} images ({built.failed} failed), methods "
               f"{', '.join(built.methods)}, built in {built.seconds:.1f} s")
    echo(f"wrote       {built.index}  <- open this in a browser")
