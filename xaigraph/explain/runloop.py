"""The run loop: every item explained into a `RunDir`, by the local engine or Ray.

    out = RunDir(path, card, force=False)
    out.check()                                   # may refuse: nothing written
    counts = run(spec, items, out)                # {"ok": N, "error": M}

Guarantees (docs/runtime.md, "The run loop"): an item already done (`RunDir.done`) is not
redone; each record is added in input order as soon as it and those before it are done;
one image's trouble is that image's error record (a bad image, a file of its own that
cannot be written); whatever ends the run early (an error, a signal), the engine is closed
and its threads joined before the exception goes on, and the records added so far stay for
the next run to resume from. Ray is started before OUT_DIR is written (it may fail).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Sequence
from typing import Any

from xaigraph.explain import engine
from xaigraph.explain.explainer import Explainer
from xaigraph.explain.io.record import Record
from xaigraph.explain.io.rundir import RunDir
from xaigraph.explain.io.write import error_record, write
from xaigraph.explain.plan import ExplainSpec

__all__ = ["run"]

def run(spec: ExplainSpec, items: Sequence[Any], out: RunDir, *,
        explainer: Explainer | None = None, ray: Any = None,
        on_record: Callable[[Record], None] | None = None,
        on_start: Callable[[Explainer | None], None] | None = None) -> dict[str, int]:
    """Explain `items` into `out` (checked); how many records are ok and how many errors.

    `explainer`: a compiled `Explainer` of `spec` to use (else one is compiled here);
    `ray`: the `ray_engine.RayOptions` of `--engine ray` (None: the local engine);
    `on_record`: called with each record once it is added; `on_start`: called with the
    explainer (None under Ray) once OUT_DIR is open, before the first image."""

    path, digest = out.path, out.run  # `finish` runs in Ray's tasks: no RunDir inside

    def finish(decoded: Any, row: dict[str, Any]) -> Record:
        return write(decoded, row, spec, path, digest)

    def fail(item: Any, message: str) -> Record:
        return error_record(item, message, out.run)

    def skip(item: Any) -> Record | None:
        return out.done(item.key)

    counts = {"ok": 0, "error": 0}
    with contextlib.ExitStack() as stack:
        if ray is None:
            explainer = explainer or Explainer(spec)
        elif out.todo([item.key for item in items]):
            _ray_start(stack, ray)
        out.add_inputs(item.path for item in items)
        stack.enter_context(out)
        if on_start is not None:
            on_start(explainer)
        records: Generator[Record, None, None]
        if ray is None:
            assert explainer is not None
            records = engine.run(explainer, items, finish=finish, fail=fail, skip=skip)
        else:
            from xaigraph.explain import ray_engine

            records = ray_engine.run(spec, items, finish=finish, fail=fail, skip=skip,
                                     options=ray)
        with contextlib.closing(records):
            for record in records:
                out.add(record)
                counts["ok" if record.ok else "error"] += 1
                if on_record is not None:
                    on_record(record)
        out.commit()
    return counts


def _ray_start(stack: contextlib.ExitStack[Any], options: Any) -> None:
    """Ray started (or joined) for the rest of the run, its actors checked against the
    cluster."""
    from xaigraph.explain import ray_engine

    ray = stack.enter_context(ray_engine.ray_instance(options))
    ray_engine.cluster_actors(ray, options)
