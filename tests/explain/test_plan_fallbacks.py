"""Fallbacks of `prepare` are never taken for an interrupted run, and never silently.

A signal handled while a runtime's call is inside the in-memory insert raises `Interrupted`
in the handler; the runtime may turn it into an error of its own (OpenVINO's Python layer
rethrows what a callback raised as a `RuntimeError`, without a cause). The run must end as
interrupted (143 for SIGTERM), not take the "in-graph targets not used" fallback and finish
with another pipeline."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from xaigraph.passes.select_classes import SelectClassesPass

from xaigraph import signals
from xaigraph.errors import MethodError
from xaigraph.explain.plan import prepare
from xaigraph.pipeline import PassContext


@pytest.fixture()
def clean_signal_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The module's record of a raised signal, put back as it was after the test."""
    monkeypatch.setattr(signals._State, "raised", False)
    monkeypatch.setattr(signals._State, "signum", None, raising=False)
    monkeypatch.setattr(signals._State, "held", 0)
    yield


def _swallowing_sigterm(self: SelectClassesPass, model: Any, ctx: PassContext) -> Any:
    """A runtime call during which SIGTERM's handler runs and whose native layer turns the
    handler's exception into its own error (no cause kept)."""
    with contextlib.suppress(signals.Interrupted):
        signals._handler(signal.SIGTERM, None)
    raise RuntimeError("Exception from src/bindings/python: error in a callback")


def test_a_signal_inside_the_insert_is_not_taken_for_a_failed_pass(
        cnn_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch,
        clean_signal_state: None) -> None:
    monkeypatch.setattr(SelectClassesPass, "run", _swallowing_sigterm)
    with pytest.raises(signals.Interrupted) as caught:
        prepare(cnn_file("gap_fc", False, "onnx17"), targets="topk:2")
    assert caught.value.exit_code == 128 + signal.SIGTERM


def test_interruption_finds_a_swallowed_signal(clean_signal_state: None) -> None:
    assert signals.interruption(RuntimeError("x")) is None
    with pytest.raises(signals.Interrupted):
        signals._handler(signal.SIGINT, None)
    found = signals.interruption(RuntimeError("x"))
    assert found is not None and found.exit_code == 130
    with pytest.raises(signals.Interrupted):
        signals.check()


def test_a_fallback_is_said_in_the_method_reason(cnn_file: Callable[..., Path],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: SelectClassesPass, model: Any, ctx: PassContext) -> Any:
        raise MethodError("select-classes does not apply to this head (test)")

    monkeypatch.setattr(SelectClassesPass, "run", refuse)
    spec = prepare(cnn_file("gap_fc", False, "onnx17"), targets="topk:2")
    assert "in-graph targets not used" in spec.method_reason
    assert "select-classes does not apply to this head (test)" in spec.method_reason
    assert not spec.classes_output and "select-classes" not in str(spec.pipeline)
