"""Bad inputs of issue 21 ("Inputs"): text inputs that are not regular files or are too
large, YOLO class ids without names, one unreadable image in a YOLO set, COCO ids of the
wrong type and JSON nested too deeply, non-finite boxes. Each is one `BadInputError` line
naming the file (exit 2 on the command line), or one image's error record (exit 3)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.explain.run_models import cli
from tests.explain.test_inputs import picture, write_coco, write_voc
from xaigraph import textfile
from xaigraph.cli import cli as cli_group
from xaigraph.errors import BadInputError
from xaigraph.explain.inputs import MAX_YOLO_CLASSES, collect
from xaigraph.labels import read_labels_file
from xaigraph.preprocess import MAX_SIDE, Preprocess


def within(seconds: float, call: Callable[[], Any], fifos: list[Path]) -> Any:
    """`call()` in a thread; a call that blocks longer fails the test (its FIFOs are then
    opened for writing and closed, so that the blocked reader ends)."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = call()
        except BaseException as exc:  # handed to the test
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        for fifo in fifos:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        thread.join(10)
        pytest.fail(f"blocked for more than {seconds} s reading {fifos}")
    if "error" in result:
        raise result["error"]
    return result.get("value")


def yolo_set(root: Path, labels: dict[str, str], names: str | None = None) -> Path:
    """A YOLO folder: images/<stem>.png (40x30) and labels/<stem>.txt for each entry."""
    (root / "labels").mkdir(parents=True)
    for i, (stem, text) in enumerate(labels.items()):
        picture(root / "images" / f"{stem}.png", (40, 30), seed=i)
        (root / "labels" / f"{stem}.txt").write_text(text)
    if names is not None:
        (root / "classes.txt").write_text(names)
    return root


def fifo_inputs(tmp: Path) -> dict[str, tuple[list[str], Path]]:
    """Each kind of text input as a FIFO: (collect's arguments, the FIFO)."""
    coco = tmp / "coco" / "instances_val.json"
    coco.parent.mkdir(parents=True)
    voc = write_voc(tmp / "voc")
    yolo = yolo_set(tmp / "yolo", {"a": "0 0.5 0.5 0.2 0.2\n"})
    names = yolo_set(tmp / "names", {"a": "0 0.5 0.5 0.2 0.2\n"})
    (yolo / "labels" / "a.txt").unlink()
    cases = {"list": ([str(tmp / "list.txt")], tmp / "list.txt"),
             "coco": ([str(coco)], coco),
             "voc": ([str(voc)], voc / "Annotations" / "000002.xml"),
             "yolo_label": ([str(yolo)], yolo / "labels" / "a.txt"),
             "yolo_names": ([str(names)], names / "classes.txt")}
    for _, fifo in cases.values():
        os.mkfifo(fifo)
    return cases


@pytest.mark.parametrize("kind", ["list", "coco", "voc", "yolo_label", "yolo_names"])
def test_a_fifo_as_a_text_input_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    args, fifo = fifo_inputs(tmp_path)[kind]
    with pytest.raises(BadInputError) as info:
        within(10, lambda: collect(args), [fifo])
    message = str(info.value)
    assert "named pipe" in message and str(fifo) in message and "\n" not in message


def test_labels_fifo_and_dev_zero_are_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "labels.txt"
    os.mkfifo(fifo)
    with pytest.raises(BadInputError, match=r"--labels .*named pipe"):
        within(10, lambda: read_labels_file(fifo), [fifo])
    zero = tmp_path / "zero.txt"
    zero.symlink_to("/dev/zero")
    with pytest.raises(BadInputError, match=r"character device, not a regular file"):
        within(10, lambda: read_labels_file(zero), [])


def test_a_list_linked_to_dev_zero_is_refused(tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.symlink_to("/dev/zero")
    with pytest.raises(BadInputError, match=r"list\.txt: a character device"):
        within(10, lambda: collect([str(listing)]), [])


def test_a_text_input_over_the_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    listing = tmp_path / "big.txt"
    with open(listing, "wb") as f:  # sparse: nothing is written to the disk
        f.truncate(textfile.MAX_TEXT_BYTES + 1)
    with pytest.raises(BadInputError, match=r"big\.txt: larger than 256 MiB, the limit"):
        within(10, lambda: collect([str(listing)]), [])
    coco = tmp_path / "instances_big.json"
    with open(coco, "wb") as f:
        f.truncate(textfile.MAX_JSON_BYTES + 1)
    with pytest.raises(BadInputError, match=r"instances_big\.json: larger than 1 GiB"):
        within(10, lambda: collect([str(coco)]), [])


def test_the_command_refuses_a_fifo_in_one_line_writing_nothing(
        cnn_file: Callable[..., Path], tmp_path: Path) -> None:
    model = cnn_file("gap_fc", False, "onnx17")
    fifo = tmp_path / "list.txt"
    os.mkfifo(fifo)
    out = tmp_path / "out"
    result = cli("explain", model, fifo, "-o", out, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "named pipe" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


# -- YOLO ------------------------------------------------------------------------------------

def test_yolo_class_ids_beyond_the_names_file_are_refused(tmp_path: Path) -> None:
    root = yolo_set(tmp_path / "yolo", {"a": "1 0.5 0.5 0.2 0.2\n2 0.5 0.5 0.2 0.2\n"},
                    names="cat\ndog\n")
    with pytest.raises(BadInputError) as info:
        collect([str(root)])
    message = str(info.value)
    assert f"{root / 'labels' / 'a.txt'}, line 2" in message
    assert "class 2" in message and "classes.txt names 2 classes" in message


@pytest.mark.parametrize(("text", "names"), [
    ("names:\n  0: cat\n  1: dog\n", ["cat", "dog"]),
    ("names:\n  - cat\n  # a comment\n  - dog\n", ["cat", "dog"]),
    ("names: [cat, 'dog']\n", ["cat", "dog"]),
])
def test_data_yaml_names(tmp_path: Path, text: str, names: list[str]) -> None:
    root = yolo_set(tmp_path / "yolo", {"a": "1 0.5 0.5 0.2 0.2\n"})
    (root / "data.yaml").write_text(text)
    assert list(collect([str(root)]).classes or []) == names


def test_data_yaml_names_with_a_gap_are_refused(tmp_path: Path) -> None:
    """`0: cat, 2: dog` named class 1 "dog" before: every later class got the wrong name."""
    root = yolo_set(tmp_path / "yolo", {"a": "2 0.5 0.5 0.2 0.2\n"})
    (root / "data.yaml").write_text("names:\n  0: cat\n  2: dog\n")
    with pytest.raises(BadInputError, match="names: has no class 1"):
        collect([str(root)])


def test_a_huge_yolo_class_id_without_names_is_refused(tmp_path: Path) -> None:
    root = yolo_set(tmp_path / "yolo", {"a": "1000000000 0.5 0.5 0.2 0.2\n"})
    with pytest.raises(BadInputError) as info:
        within(20, lambda: collect([str(root)]), [])
    message = str(info.value)
    assert "line 1" in message and "1000000000" in message
    assert f"at most {MAX_YOLO_CLASSES}" in message and "names file" in message
    ok = yolo_set(tmp_path / "ok", {"a": f"{MAX_YOLO_CLASSES - 1} 0.5 0.5 0.2 0.2\n"})
    assert len(collect([str(ok)]).classes or []) == MAX_YOLO_CLASSES


def test_one_empty_image_in_a_yolo_set_is_that_images_error(
        cnn_file: Callable[..., Path], tmp_path: Path) -> None:
    root = yolo_set(tmp_path / "yolo", {"bad": "0 0.5 0.5 0.2 0.2\n",
                                        "good": "0 0.5 0.5 0.5 0.5\n"})
    (root / "images" / "bad.png").write_bytes(b"")
    data = collect([str(root)])
    assert [i.key for i in data.items] == ["bad", "good"]
    assert data.items[1].boxes[0].box == (10.0, 7.5, 30.0, 22.5)
    out = tmp_path / "out"
    result = cli("explain", cnn_file("gap_fc", False, "onnx17"), root, "-o", out)
    assert result.returncode == 3, result.stderr
    bad, good = (json.loads(line) for line in (out / "results.jsonl").read_text().splitlines())
    assert bad["status"] == "error" and "empty file" in bad["error"]
    assert good["status"] == "ok"


# -- COCO ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("where", "value", "words"), [
    ("image", [1, 2], "image id [1, 2] must be a number or a string"),
    ("image", {"a": 1}, "image id {'a': 1} must be a number or a string"),
    ("annotation", [10], "image_id [10] must be a number or a string"),
    ("category", {"x": 1}, "category id {'x': 1} must be a number or a string"),
    ("category_id", [7], "category_id [7] must be a number or a string"),
])
def test_coco_ids_that_are_lists_or_objects_are_one_line(tmp_path: Path, where: str,
                                                         value: Any, words: str) -> None:
    path = write_coco(tmp_path / "coco")
    doc = json.loads(path.read_text())
    if where == "image":
        doc["images"][0]["id"] = value
    elif where == "annotation":
        doc["annotations"][0]["image_id"] = value
    elif where == "category":
        doc["categories"][0]["id"] = value
    else:
        doc["annotations"][0]["category_id"] = value
    path.write_text(json.dumps(doc))
    with pytest.raises(BadInputError) as info:
        collect([str(path)])
    assert str(path) in str(info.value) and words in str(info.value)


def test_coco_nested_too_deeply_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "instances_deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BadInputError) as info:
        collect([str(path)])
    assert str(info.value) == f"{path}: not valid JSON (nested too deeply)"


# -- non-finite boxes ------------------------------------------------------------------------

@pytest.mark.parametrize("bbox", ["[NaN, 1, 2, 3]", "[1, 2, Infinity, 3]",
                                  "[1e308, 0, 1e308, 4]", "[1, 2, 3, -Infinity]"])
def test_coco_boxes_must_be_finite(tmp_path: Path, bbox: str) -> None:
    path = write_coco(tmp_path / "coco")
    text = path.read_text().replace("[2, 3, 10, 5]", bbox)
    path.write_text(text)
    with pytest.raises(BadInputError, match=r"annotation 1: bbox .* finite"):
        collect([str(path)])


@pytest.mark.parametrize("value", ["nan", "inf", "1e309", "-Infinity"])
def test_voc_and_yolo_boxes_must_be_finite(tmp_path: Path, value: str) -> None:
    voc = write_voc(tmp_path / "voc")
    xml = voc / "Annotations" / "000001.xml"
    xml.write_text(xml.read_text().replace("<xmax>10</xmax>", f"<xmax>{value}</xmax>"))
    with pytest.raises(BadInputError, match=r"000001\.xml: object 1: <bndbox>.*finite"):
        collect([str(voc)])
    yolo = yolo_set(tmp_path / "yolo", {"a": f"0 0.5 0.5 0.2 0.2\n0 0.5 {value} 0.2 0.2\n"})
    with pytest.raises(BadInputError, match=r"a\.txt, line 2.*finite"):
        collect([str(yolo)])


def test_yolo_box_overflowing_to_infinity_is_refused(tmp_path: Path) -> None:
    yolo = yolo_set(tmp_path / "yolo", {"a": "0 1e308 0.5 1e308 0.2\n"})
    with pytest.raises(BadInputError, match=r"a\.txt, line 1.*finite"):
        collect([str(yolo)])


# -- impossible sizes ------------------------------------------------------------------------

@pytest.mark.parametrize("size", ["100000,100000", "8193", "224,9000"])
def test_an_input_size_beyond_the_maximum_is_refused_up_front(
        cnn_file: Callable[..., Path], tmp_path: Path, size: str) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(cli_group, ["explain", str(cnn_file("gap_fc", False, "onnx17")),
                                            str(picture(tmp_path / "a.png")), "-o", str(out),
                                            "--size", size])
    assert result.exit_code == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "--size" in result.stderr
    assert f"at most {MAX_SIDE}" in result.stderr and not out.exists()
    with pytest.raises(ValueError, match=f"at most {MAX_SIDE}"):
        Preprocess(size=(int(size.split(",")[0]), 224 if "," not in size else
                         int(size.split(",")[1])))
