"""INPUT arguments (xaigraph/explain/inputs.py): files, folders (recursive, sorted, hidden
skipped), list files, `-` for stdin, COCO and Pascal VOC with their boxes, keys, errors; and
the ground truth kept in explain's results.jsonl."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from xaigraph.cli import cli
from xaigraph.errors import BadInputError
from xaigraph.explain.inputs import Box, collect


def picture(path: Path, size: tuple[int, int] = (24, 18), seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def write_coco(root: Path) -> Path:
    """COCO: 3 images in root/images, categories with ids out of order, one image without
    annotations."""
    for i in range(3):
        picture(root / "images" / f"im{i}.jpg", (40, 30), seed=i)
    doc = {
        "images": [{"id": 10 + i, "file_name": f"im{i}.jpg", "width": 40, "height": 30}
                   for i in range(3)],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 7, "bbox": [2, 3, 10, 5]},
            {"id": 2, "image_id": 10, "category_id": 3, "bbox": [0, 0, 40, 30]},
            {"id": 3, "image_id": 11, "category_id": 3, "bbox": [5.5, 1, 4, 4]},
        ],
        "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}],
    }
    path = root / "annotations" / "instances_val.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(doc))
    (root / "annotations" / "images").symlink_to(root / "images")  # found beside the json
    return path


def write_voc(root: Path) -> Path:
    picture(root / "JPEGImages" / "000001.jpg", (50, 40))
    (root / "Annotations").mkdir(parents=True)
    (root / "Annotations" / "000001.xml").write_text(
        "<annotation><filename>000001.jpg</filename>"
        "<object><name>person</name><difficult>1</difficult><bndbox><xmin>1</xmin>"
        "<ymin>2</ymin><xmax>10</xmax><ymax>20</ymax></bndbox></object>"
        "<object><name>bird</name><bndbox><xmin>30</xmin><ymin>5</ymin><xmax>50</xmax>"
        "<ymax>40</ymax></bndbox></object></annotation>")
    return root


def test_folders_are_recursive_sorted_and_skip_hidden(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    for name in ("b.png", "a.JPG", "sub/z.webp", "sub/deeper/c.bmp", "d.tiff",
                 ".hidden.png", ".cache/x.png"):
        picture(root / name)
    (root / "notes.md").write_text("not an image suffix")
    data = collect([str(root)])
    assert [i.key for i in data.items] == ["a", "b", "d", "sub/deeper/c", "sub/z"]
    assert [i.index for i in data.items] == list(range(5))
    assert {i.source for i in data.items} == {"folder"}
    assert collect([str(root)]).items == data.items  # deterministic


def test_list_file_and_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = picture(tmp_path / "set" / "a.png")
    b = picture(tmp_path / "set" / "b.png")
    listing = tmp_path / "set" / "list.txt"
    listing.write_text(f"# images\nb.png\n\n{a}\n")  # relative to the list; absolute
    data = collect([str(listing)])
    assert [i.path for i in data.items] == [b, a] and data.items[0].source == "list"
    monkeypatch.chdir(tmp_path)
    data = collect(["-"], stdin=io.StringIO("set/a.png\nset/b.png\n"))
    assert [i.path.resolve() for i in data.items] == [a, b]
    assert data.items[0].source == "stdin"
    listing.write_text("missing.png\n")
    with pytest.raises(BadInputError, match="line 1"):
        collect([str(listing)])


def test_keys_that_collide_get_their_suffix(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    picture(root / "a.png")
    picture(root / "a.jpg")
    picture(root / "my photo!.png")
    keys = [i.key for i in collect([str(root)]).items]
    assert sorted(keys) == ["a_jpg", "a_png", "my_photo_"]


def test_coco_boxes_and_classes(tmp_path: Path) -> None:
    data = collect([str(write_coco(tmp_path / "coco"))])
    assert data.source == "coco" and data.classes == ["cat", "dog"]  # sorted by id: 3, 7
    im0, im1, im2 = data.items
    assert im0.boxes == (Box((2.0, 3.0, 12.0, 8.0), 1, "dog"),
                         Box((0.0, 0.0, 40.0, 30.0), 0, "cat"))
    assert set(im0.labels) == {"dog", "cat"}
    assert im1.boxes == (Box((5.5, 1.0, 9.5, 5.0), 0, "cat"),)
    assert im2.boxes == () and im2.path.name == "im2.jpg"  # kept without annotations


def test_voc_boxes_are_one_based_inclusive(tmp_path: Path) -> None:
    data = collect([str(write_voc(tmp_path / "VOC2012"))])
    (item,) = data.items
    assert data.source == "voc" and data.classes == ["bird", "person"]
    assert item.path.name == "000001.jpg"
    assert item.boxes == (Box((0.0, 1.0, 10.0, 20.0), 1, "person"),
                          Box((29.0, 4.0, 50.0, 40.0), 0, "bird"))


@pytest.mark.parametrize("text", ["{not json", '{"images": []}', '{"images": [{"id": 1}], '
                                  '"annotations": [], "categories": []}'])
def test_broken_coco_is_one_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "instances_val.json"
    path.write_text(text)
    with pytest.raises(BadInputError) as info:
        collect([str(path)])
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_input_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="input not found"):
        collect([str(tmp_path / "nope.png")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="no images"):
        collect([str(tmp_path / "empty")])


def _lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_explain_keeps_coco_and_voc_ground_truth(cnn_file: Callable[..., Path],
                                                tmp_path: Path) -> None:
    model = cnn_file("gap_fc", False, "onnx17")
    coco = write_coco(tmp_path / "coco")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["explain", str(model), str(coco), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    r0, r1, r2 = _lines(out)
    assert r0["ground_truth"] == {
        "boxes": [{"box": [2.0, 3.0, 12.0, 8.0], "label": 1, "name": "dog"},
                  {"box": [0.0, 0.0, 40.0, 30.0], "label": 0, "name": "cat"}],
        "labels": list(collect([str(coco)]).items[0].labels)}
    assert r1["ground_truth"]["boxes"] == [{"box": [5.5, 1.0, 9.5, 5.0], "label": 0,
                                            "name": "cat"}]
    assert "ground_truth" not in r2 and r2["status"] == "ok"
    voc = write_voc(tmp_path / "voc")
    out = tmp_path / "out_voc"
    result = CliRunner().invoke(cli, ["explain", str(model), str(voc), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    (r,) = _lines(out)
    assert [b["name"] for b in r["ground_truth"]["boxes"]] == ["person", "bird"]
    assert r["ground_truth"]["boxes"][0]["box"] == [0.0, 1.0, 10.0, 20.0]
