"""Pass infrastructure: `Pass`, `PassResult`, `PassContext` and `PassManager`.

A pass has a kebab-case `name`, options that print as `name{key=value,...}`, a `run` that
returns whether it modified the model, and optional `requires` / `ensures` checks. The manager
runs the passes in order, verifies the model after each pass, checks that a pass's `modified`
claim matches what happened, and wraps any failure with the pass's name and the passes that
ran before it.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from xaigraph.backends import Backend
from xaigraph.errors import PassError, XaiGraphError
from xaigraph.graph_view import GraphView

__all__ = ["Pass", "PassContext", "PassManager", "PassResult"]

Model = Any  # the backend's native model: Model or onnx.ModelProto

log = logging.getLogger(__name__)


@dataclass
class PassResult:
    model: Model
    modified: bool


@dataclass
class PassContext:
    """What passes share: the original model, options, and what earlier passes found."""

    backend: Backend
    original: Model
    options: dict[str, Any] = field(default_factory=dict)
    target: Any = None  # xaigraph.target.Target, set by detect-target
    head: Any = None  # xaigraph.head.Head, set by detect-target
    probe_inputs: list[tuple[int, ...]] = field(default_factory=list)  # set by detect-target
    report: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    _view: GraphView | None = None
    _view_of: int | None = None

    def view(self, model: Model) -> GraphView:
        """The networkx view of `model`, rebuilt when a pass has modified it."""
        key = hash(self.backend.fingerprint(model))
        if self._view is None or self._view_of != key:
            self._view = self.backend.build_view(model)
            self._view_of = key
        return self._view

    def invalidate(self) -> None:
        self._view = None
        self._view_of = None


class Pass(ABC):
    name: ClassVar[str]

    def options(self) -> dict[str, str]:
        return {}

    def text(self) -> str:
        opts = self.options()
        if not opts:
            return self.name
        return self.name + "{" + ",".join(f"{k}={v}" for k, v in opts.items()) + "}"

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
        return ",".join(p.text() for p in self.passes)

    def run(
        self,
        model: Model,
        ctx: PassContext,
        progress: Callable[[str], None] | None = None,
    ) -> Model:
        ran: list[str] = []
        for p in self.passes:
            if progress is not None:
                progress(p.text())
            start = time.perf_counter()
            before = ctx.backend.fingerprint(model)
            try:
                p.requires(model, ctx)
                result = p.run(model, ctx)
                model = result.model
                changed = ctx.backend.fingerprint(model) != before
                if changed != result.modified:
                    raise AssertionError(
                        f"pass reported modified={result.modified} but the model "
                        f"{'changed' if changed else 'did not change'}"
                    )
                if changed:
                    ctx.backend.verify(model)
                    ctx.invalidate()
                p.ensures(model, ctx)
            except XaiGraphError as exc:  # same type, message prefixed with where it happened
                exc.args = (self._where(p, ran) + str(exc), *exc.args[1:])
                raise
            except Exception as exc:
                detail = str(exc).strip().splitlines()
                msg = detail[-1] if detail else type(exc).__name__
                raise PassError(
                    self._where(p, ran) + f"internal error: {type(exc).__name__}: {msg} "
                    "(rerun with --debug for the traceback)",
                    exc,
                ) from exc
            ctx.timings[p.name] = time.perf_counter() - start
            log.debug("%s: %.3fs", p.text(), ctx.timings[p.name])
            ran.append(p.name)
        return model

    @staticmethod
    def _where(p: Pass, ran: list[str]) -> str:
        before = f" (after {', '.join(ran)})" if ran else ""
        return f"{p.text()}{before}: "
