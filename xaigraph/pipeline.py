"""Pass infrastructure: `Pass`, `PassResult`, `PassContext` (with the records passes leave in
it) and `PassManager`.

A pass has a kebab-case `name`, options that print as `name{key=value,...}` (options at their
defaults are not printed; a `,` inside a value prints as a space), a `run` that returns
whether it modified the model, and optional `requires` / `ensures` checks. Two passes are
equal when their names and options are. The manager runs the passes in order, verifies the
model after each pass, checks that a pass's `modified` claim matches what happened, and wraps
any failure with the pass's name and the passes that ran before it.

Follow-up passes: an analysis pass that finds surgery needed does not do it; it names the
pass that does in `PassResult.then`, and the manager runs those passes right after it (unless
they are already next in the plan, as when the pipeline text already names them). The run's
plan, follow-ups included, is `PassContext.plan`: the stamp and the report print that, so
the text printed is the pipeline that ran, and parsing it back builds the same pipeline.
Today's one follow-up: detect-target asks for channels-first when the target map is
channels-last (`[N, H, W, C]`); an ordinary model's pipeline has no follow-up.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np

from xaigraph import signals
from xaigraph.backends import Backend
from xaigraph.errors import PassError, XaiGraphError
from xaigraph.graph_view import GraphView
from xaigraph.head import Head
from xaigraph.target import Target
from xaigraph.validate import ValidationRun

__all__ = [
    "FeatureRecord",
    "InsertRecord",
    "Pass",
    "PassContext",
    "PassManager",
    "PassResult",
    "SelfCheck",
    "ValidationRecord",
    "pipeline_text",
]

Model = Any  # the backend's native model: Model or onnx.ModelProto

log = logging.getLogger(__name__)


@dataclass
class PassResult:
    model: Model
    modified: bool
    then: list[Pass] = field(default_factory=list)  # passes to run next (see the module doc)


@dataclass
class SelfCheck:
    """insert-saliency's check of a method's picked form against its reference form."""

    form: str
    against: str
    passed: bool
    max_abs: float
    map_range: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class InsertRecord:
    """What insert-saliency built: the method, the target's declared shape, the form built
    and one line on how (`text`), and the self-check when the form was checked."""

    method: str
    declared_shape: tuple[int | None, ...]
    form: str | None = None
    text: str = ""
    self_check: SelfCheck | None = None


@dataclass
class FeatureRecord:
    """What feature-vector built and how its check against the reference went: the pooling
    op it reads, the output's declared shape, and per run the largest difference from the
    reference (the spatial mean, in numpy, of the pooling's input in the original model)."""

    pool: str
    shape: list[int | None]
    atol: float
    rtol: float
    runs: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"pool": self.pool, "passed": True,
                "tolerance": {"atol": self.atol, "rtol": self.rtol}, "runs": self.runs}


@dataclass
class ValidationRecord:
    """What validate compared: the runs, each output's differences, and the tolerance."""

    runs: list[ValidationRun]
    atol: float
    rtol: float

    def as_dict(self) -> dict[str, Any]:
        return {"passed": True, "tolerance": {"atol": self.atol, "rtol": self.rtol},
                "runs": [r.as_dict() for r in self.runs]}


@dataclass
class PassContext:
    """What passes share: the original model, the sample inputs, and what earlier passes
    found (`target`, `head`, `probe_inputs` from detect-target; `channels_last`, why the map
    was channels-last, from channels-first; `insert` from insert-saliency; `scaling` from
    embed-scaling; `validation` from validate; `feature` from feature-vector; `sanity`, the
    sanity checks' figures, from sanity)."""

    backend: Backend
    original: Model
    samples: Sequence[np.ndarray] = ()
    target: Target | None = None
    head: Head | None = None
    probe_inputs: list[tuple[int, ...]] = field(default_factory=list)
    channels_last: str | None = None
    insert: InsertRecord | None = None
    scaling: str = "none"
    validation: ValidationRecord | None = None
    feature: FeatureRecord | None = None
    sanity: dict[str, Any] | None = None
    plan: list[Pass] = field(default_factory=list)  # this run's passes, follow-ups included
    timings: dict[str, float] = field(default_factory=dict)
    _view: GraphView | None = None
    _view_of: int | None = None
    _first_view: GraphView | None = None  # of the model before any pass modified it
    _modified: bool = False

    def view(self, model: Model) -> GraphView:
        """The networkx view of `model`, rebuilt when a pass has modified it."""
        key = hash(self.backend.fingerprint(model))
        if self._view is None or self._view_of != key:
            self._view = self.backend.build_view(model)
            self._view_of = key
            if not self._modified and self._first_view is None:
                self._first_view = self._view
        return self._view

    def original_view(self) -> GraphView:
        """The view of the model as it came in (the one analysis saw, when it ran)."""
        if self._first_view is None:
            self._first_view = self.backend.build_view(self.original)
        return self._first_view

    def invalidate(self) -> None:
        """The model was modified: its view is rebuilt on the next `view`."""
        self._view = None
        self._view_of = None
        self._modified = True

    def pipeline_text(self) -> str:
        """The text of this run's pipeline, follow-up passes included."""
        return pipeline_text(self.plan)


def pipeline_text(passes: Sequence[Pass]) -> str:
    return ",".join(p.text() for p in passes)


class Pass(ABC):
    name: ClassVar[str]
    option_names: ClassVar[tuple[str, ...]] = ()  # every option it takes, in printed order

    def options(self) -> dict[str, str]:
        """The options not at their defaults, as printed."""
        return {}

    @classmethod
    def from_options(cls, options: dict[str, str]) -> Pass:
        """The pass that prints as `name{options}` (`options` as printed, only names from
        `option_names`); raise `BadInputError` when they do not make one."""
        return cls()

    def text(self) -> str:
        opts = self.options()
        if not opts:
            return self.name
        return self.name + "{" + ",".join(f"{k}={v}" for k, v in opts.items()) + "}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pass):
            return NotImplemented
        return (self.name, self.options()) == (other.name, other.options())

    def __hash__(self) -> int:
        return hash(self.text())

    def __repr__(self) -> str:
        return f"<pass {self.text()}>"

    def requires(self, model: Model, ctx: PassContext) -> None:  # noqa: B027
        """Raise `XaiGraphError` when the model or context is not fit for this pass."""

    @abstractmethod
    def run(self, model: Model, ctx: PassContext) -> PassResult: ...

    def ensures(self, model: Model, ctx: PassContext) -> None:  # noqa: B027
        """Raise when the pass did not leave what it promises."""


class PassManager:
    def __init__(self, passes: Sequence[Pass]) -> None:
        self.passes = list(passes)

    def text(self) -> str:
        """The planned pipeline (a run may add follow-ups: see `PassContext.plan`)."""
        return pipeline_text(self.passes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PassManager):
            return NotImplemented
        return self.passes == other.passes

    def __hash__(self) -> int:
        return hash(self.text())

    def __repr__(self) -> str:
        return f"<pipeline {self.text()}>"

    def run(
        self,
        model: Model,
        ctx: PassContext,
        progress: Callable[[str], None] | None = None,
    ) -> Model:
        ctx.plan = list(self.passes)
        return self._run_from(0, model, ctx, [], progress)

    def resume(
        self,
        model: Model,
        ctx: PassContext,
        done: PassManager,
        progress: Callable[[str], None] | None = None,
    ) -> Model:
        """Run this pipeline on `model` and the `ctx` that `done` (its first passes) already
        ran them on, from the first pass `done` does not hold: the analysis is not run
        again. `ctx.plan` (`done`'s, follow-ups included) gets the rest of this plan."""
        if self.passes[:len(done.passes)] != done.passes:
            raise ValueError(f"cannot resume {self.text()} after {done.text()}: it does not "
                             "start with those passes")
        ran = [p.name for p in ctx.plan]
        first = len(ctx.plan)
        ctx.plan = ctx.plan + self.passes[len(done.passes):]
        return self._run_from(first, model, ctx, ran, progress)

    def _run_from(self, i: int, model: Model, ctx: PassContext, ran: list[str],
                  progress: Callable[[str], None] | None) -> Model:
        """Run `ctx.plan` from its pass `i` (see `run`)."""
        while i < len(ctx.plan):
            p = ctx.plan[i]
            if progress is not None:
                progress(p.text())
            start = time.perf_counter()
            result = self._run_one(p, model, ctx, ran)
            model = result.model
            then = result.then
            if then and ctx.plan[i + 1:i + 1 + len(then)] != then:
                ctx.plan[i + 1:i + 1] = then
            ctx.timings[p.name] = time.perf_counter() - start
            log.debug("%s: %.3fs", p.text(), ctx.timings[p.name])
            ran.append(p.name)
            i += 1
        return model

    def _run_one(self, p: Pass, model: Model, ctx: PassContext, ran: list[str]) -> PassResult:
        before = ctx.backend.fingerprint(model)
        try:
            p.requires(model, ctx)
            result = p.run(model, ctx)
            changed = ctx.backend.fingerprint(result.model) != before
            if changed != result.modified:
                raise AssertionError(
                    f"pass reported modified={result.modified} but the model "
                    f"{'changed' if changed else 'did not change'}"
                )
            if changed:
                ctx.backend.verify(result.model)
                ctx.invalidate()
            p.ensures(result.model, ctx)
        except XaiGraphError as exc:  # same type and message; where it happened beside it
            _stop_if_interrupted(exc)
            if exc.where is None:
                exc.where = self._where(p, ran)
            raise
        except Exception as exc:
            _stop_if_interrupted(exc)
            detail = str(exc).strip().splitlines()
            msg = detail[-1] if detail else type(exc).__name__
            error = PassError(f"internal error: {type(exc).__name__}: {msg} (rerun with "
                              "--debug for the traceback)", exc)
            error.where = self._where(p, ran)
            raise error from exc
        return result

    @staticmethod
    def _where(p: Pass, ran: list[str]) -> str:
        """The pass an error came from, and those before it: shown under `--debug` and as
        `--json`'s `error.pass`, never in the one line a user reads."""
        before = f" (after {', '.join(ran)})" if ran else ""
        return f"{p.text()}{before}"


def _stop_if_interrupted(exc: BaseException) -> None:
    """A signal's `Interrupted` that a runtime turned into an error of its own ends the run
    as the interruption it is (never as a pass's error, which a fallback might take)."""
    stopped = signals.interruption(exc)
    if stopped is not None:
        raise stopped from exc
