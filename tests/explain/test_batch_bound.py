"""Same files whatever the batch, within the documented bound (docs/runtime.md, "The run
loop"): ONNX Runtime computes an image's numbers in another order in a batch of another size,
so the bundled model's raw maps differ by about 1e-7 of their range between `--batch-size 1`
and `4`, and a map's colour by a level where a value sits on a rounding edge. The same batch
composition writes the same bytes."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.explain import run_models
from xaigraph.cli import cli
from xaigraph.explain.report import map_values

MODEL = Path(str(resources.files("xaigraph.data") / "efficientnet_lite0.onnx"))
pytestmark = pytest.mark.slow  # `make test-fast` leaves it out (three runs of the bundled model)


def explain(*args: str | Path) -> None:
    result = CliRunner().invoke(cli, ["explain", *map(str, args)])
    assert result.exit_code == 0, result.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("batches")
    photos = run_models.photos(root / "photos", 8, size=(240, 320))
    out = {}
    for name, batch in (("b1", 1), ("b4", 4), ("b4again", 4)):
        out[name] = root / name
        explain(MODEL, photos, "-o", out[name], "--batch-size", batch, "--raw",
                "--targets", "topk:3", "--runtime", "onnxruntime")
    return out


def _files(out: Path, folder: str) -> dict[str, Path]:
    return {p.name: p for p in sorted((out / folder).iterdir())}


def test_the_same_batches_write_the_same_bytes(runs: dict[str, Path]) -> None:
    for folder in ("maps", "overlays", "raw"):
        a, b = _files(runs["b4"], folder), _files(runs["b4again"], folder)
        assert a.keys() == b.keys() and len(a) == 24
        assert all(a[n].read_bytes() == b[n].read_bytes() for n in a), folder


def test_other_batches_differ_within_the_bound(runs: dict[str, Path]) -> None:
    one, four = runs["b1"], runs["b4"]
    raw1, raw4 = _files(one, "raw"), _files(four, "raw")
    assert raw1.keys() == raw4.keys()
    worst = 0.0
    for name in raw1:
        x, y = np.load(raw1[name]), np.load(raw4[name])
        worst = max(worst, float(np.abs(x - y).max() / (x.max() - x.min())))
    assert worst <= 1e-6
    maps1, maps4 = _files(one, "maps"), _files(four, "maps")
    assert maps1.keys() == maps4.keys()  # same classes, same scores to two decimals
    for name in maps1:
        a, b = map_values(maps1[name], 96), map_values(maps4[name], 96)
        assert np.nanmax(np.abs(a - b)) <= 2 / 255 + 1e-9, name
    over1, over4 = _files(one, "overlays"), _files(four, "overlays")
    for name in over1:
        a = np.asarray(Image.open(over1[name]), dtype=np.int16)
        b = np.asarray(Image.open(over4[name]), dtype=np.int16)
        assert np.abs(a - b).max() <= 8, name
