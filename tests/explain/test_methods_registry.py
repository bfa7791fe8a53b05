"""The runtime's one method registry (xaigraph/explain/methods.py): in-graph entries are the
compiler's `Method` facts, the CLI's choices, auto's pick, the black-box dispatch and the
docs' table all come from it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from xaigraph.errors import BadInputError
from xaigraph.explain import methods
from xaigraph.explain.blackbox import BlackBoxOptions, explain_one
from xaigraph.explain.cli_explain import explain
from xaigraph.methods import METHODS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "runtime.md"


def test_in_graph_entries_are_the_compilers_methods() -> None:
    in_graph = {n: m for n, m in methods.REGISTRY.items() if m.in_graph}
    assert list(in_graph) == list(METHODS)
    for name, info in in_graph.items():
        compiled = METHODS[name]
        assert (info.per_class, info.target_kind, info.summary) == (
            compiled.per_class, compiled.target_kind, compiled.summary)
        assert info.sampler is None
    black = [n for n, m in methods.REGISTRY.items() if m.black_box]
    assert black == ["rise", "aise"]
    assert all(methods.REGISTRY[n].sampler is not None for n in black)


def test_auto_picks_one_method_per_target_kind_and_falls_back_to_rise() -> None:
    for kind in methods.TARGET_KINDS:
        pick = methods.auto_pick(kind)
        assert pick.in_graph and pick.target_kind == kind and pick.per_class
    assert [methods.auto_pick(k).name for k in ("map", "tokens", "detector")] == [
        "reciprocam", "vitreciprocam", "detclassprobabilitymap"]
    assert methods.auto_fallback().name == "rise"


def test_the_clis_choices_are_the_registrys() -> None:
    option = next(p for p in explain.params if p.name == "method")
    assert tuple(option.type.choices) == methods.choices() == (  # type: ignore[attr-defined]
        "auto", *METHODS, "rise", "aise")
    with pytest.raises(BadInputError, match=r"--methods: unknown method 'nosuch'; choose one "
                                            r"of: reciprocam, .*, rise, aise$"):
        methods.get("nosuch", "--methods")


def test_black_box_dispatch_refuses_other_names() -> None:
    x = np.zeros((1, 3, 4, 4), np.float32)
    for name in ("reciprocam", "auto", "nosuch"):
        with pytest.raises(BadInputError, match=r"unknown black-box method .*rise, aise"):
            explain_one(x, lambda a: np.ones((len(a), 2)), name, BlackBoxOptions(), [0])


def test_run_json_settings_come_from_the_sampler() -> None:
    options = BlackBoxOptions(preset="speed", num_masks=40)
    assert options.settings("rise") == {"preset": "speed", "seed": 0, "num_masks": 40,
                                        "cells": 7, "prob": 0.5}
    assert options.settings("aise") == {"preset": "speed", "seed": 0,
                                        "kernel_widths": [0.15, 0.3],
                                        "evaluations_per_width": 16}


def test_docs_table_is_the_registrys() -> None:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("<!-- methods.table() -->\n") + len("<!-- methods.table() -->\n")
    end = text.index("<!-- end of methods.table() -->")
    assert text[start:end] == methods.table()
    for name in methods.REGISTRY:
        assert f"| `{name}` |" in text[start:end]


def test_prepare_names_the_choices_for_an_unknown_method(cnn_file: Callable[..., Path]
                                                         ) -> None:
    from xaigraph.explain.plan import prepare

    model = cnn_file("gap_fc", False, "onnx17")
    with pytest.raises(BadInputError, match="--method: unknown method 'nosuch'; choose one of"):
        prepare(model, method="nosuch")
    spec = prepare(model, method="auto")  # a CNN: the registry's pick for a `map` target
    assert spec.method == "reciprocam" and spec.method_reason.startswith("auto: a CNN")
    assert spec.method_info is methods.REGISTRY["reciprocam"] and spec.white_box
