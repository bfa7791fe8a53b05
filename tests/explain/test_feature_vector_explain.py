"""`explain` on a model augmented with `--feature-vector` (alone, and with `--targets`): the
extra `feature_vector` output is neither taken for the class scores nor for
`saliency_classes`; the predictions and maps are those of the same model without it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import xaigraph
from xaigraph.cli import cli


def _explain(model: Path, photo: Path, out: Path) -> list[dict]:
    result = CliRunner().invoke(cli, ["explain", str(model), str(photo), "-o", str(out),
                                      "--no-overlay", "--raw", "--targets", "topk:2"])
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in (out / "results.jsonl").open()]


@pytest.mark.parametrize("targets", [None, "topk:2"])
@pytest.mark.parametrize("fmt", ["onnx", "ir"])
def test_maps_and_scores_as_without_the_vector(cnn_file: Callable[..., Path], tmp_path: Path,
                                               targets: str | None, fmt: str) -> None:
    photo = tmp_path / "photo.png"
    rng = np.random.default_rng(11)
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(photo)
    records = []
    for with_vector in (False, True):
        path = tmp_path / f"m{int(with_vector)}.{'xml' if fmt == 'ir' else 'onnx'}"
        xaigraph.save(xaigraph.insert(cnn_file("gap_fc", False, "onnx17"), targets=targets,
                                      output_format=fmt, feature_vector=with_vector), path)
        out = tmp_path / f"out{int(with_vector)}"
        records.append((out, _explain(path, photo, out)))
    (plain_out, [plain]), (vector_out, [vector]) = records
    assert vector["predictions"] == plain["predictions"]
    assert [t["class"] for t in vector["targets"]] == [t["class"] for t in plain["targets"]]
    for a, b in zip(plain["targets"], vector["targets"], strict=True):
        np.testing.assert_array_equal(np.load(vector_out / b["raw"]), np.load(plain_out / a["raw"]))
