"""The bad-input matrix (issue 21, "Done when"): `CASES`, each a `bad_inputs.Case` named
`family/what[/how]`, across explain, eval, report, insert, inspect and strip; `SAMPLE`, a
fixed 40 of them (every family represented) for `make test`."""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypedDict

from tests.explain.bad_images import IMAGES, bomb_png, encoded
from tests.explain.bad_inputs import Case, Setup, voc_xml


class Place(TypedDict, total=False):
    """What cases share of `Case`'s fields: the kit entries, what they write, where they run."""

    kit: tuple[str, ...]
    out: tuple[str, ...]
    cwd: str


# -- small writers -----------------------------------------------------------------------------


def put(rel: str, data: bytes | str) -> Setup:
    """Writes `data` at `rel` (parents made)."""
    def setup(root: Path) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return setup


def photo(rel: str = "in/a.png", size: tuple[int, int] = (64, 48)) -> Setup:
    return put(rel, encoded("PNG", size))


def fifo(rel: str) -> Setup:
    def setup(root: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(root / rel)
    return setup


def link(rel: str, target: str) -> Setup:
    def setup(root: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).symlink_to(target)
    return setup


def folder(rel: str) -> Setup:
    return lambda root: (root / rel).mkdir(parents=True, exist_ok=True)


def remove(rel: str) -> Setup:
    def setup(root: Path) -> None:
        path = root / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return setup


def sparse(rel: str, size: int) -> Setup:
    def setup(root: Path) -> None:
        with open(root / rel, "wb") as f:
            f.truncate(size)
    return setup


def edit_json(rel: str, change: Callable[[Any], Any]) -> Setup:
    """`rel` read as JSON, changed by `change` (which returns the new document), written
    back (NaN and infinity as Python's json writes them)."""
    def setup(root: Path) -> None:
        path = root / rel
        path.write_text(json.dumps(change(json.loads(path.read_text()))))
    return setup


def edit_lines(rel: str, change: Callable[[list[dict[str, Any]]], Iterable[str]]) -> Setup:
    """results.jsonl's records through `change`, which returns the file's new lines."""
    def setup(root: Path) -> None:
        path = root / rel
        records = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text("".join(f"{line}\n" for line in change(records)))
    return setup


def chain(*setups: Setup) -> Setup:
    def setup(root: Path) -> None:
        for step in setups:
            step(root)
    return setup


EXPLAIN = ("explain", "cnn.onnx")
QUIET = ("-o", "out", "--no-overlay")


def explain(*inputs: str, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    return (*EXPLAIN, *inputs, *QUIET, *extra)


# -- images ------------------------------------------------------------------------------------

def image_cases() -> list[Case]:
    """Each bad image beside a good one: in a folder, named as an argument, and in a list."""
    cases = []
    for what, (name, make) in IMAGES.items():
        def place(root: Path, name: str = name, make: Callable[[Path], None] = make) -> None:
            photo()(root)
            make(root / "in" / name)

        listing = put("in/list.txt", f"a.png\n{name}\n".encode(errors="surrogateescape"))
        cases += [
            Case(f"image/{what}/folder", explain("in"), place),
            Case(f"image/{what}/argument", explain("in/a.png", f"in/{name}"), place),
            Case(f"image/{what}/list", explain("in/list.txt"), chain(place, listing)),
        ]
    return cases


# -- list files and standard input -------------------------------------------------------------

LISTS: dict[str, Setup] = {
    "fifo": fifo("in/list.txt"),
    "link_to_dev_zero": link("in/list.txt", "/dev/zero"),
    "non_utf8": put("in/list.txt", b"a.png\n\xff\xfe.png\n"),
    "missing_entry": put("in/list.txt", "a.png\nnope.png\n"),
    "empty": put("in/list.txt", ""),
    "comments_only": put("in/list.txt", "# nothing\n\n   \n"),
    "entry_is_a_folder": chain(photo("in/sub/c.png"), put("in/list.txt", "sub\n")),
    "names_itself": put("in/list.txt", "list.txt\na.png\n"),
    "two_lists_in_a_cycle": chain(put("in/list.txt", "l2.txt\n"), put("in/l2.txt", "list.txt\n")),
    "crlf": put("in/list.txt", "a.png\r\n"),
    "nul_byte": put("in/list.txt", "a.png\x00b.png\n"),
    "line_of_100000_chars": put("in/list.txt", "x" * 100000 + ".png\n"),
    "bom": put("in/list.txt", "\ufeffa.png\n"),
    "entry_outside_its_folder": chain(photo("elsewhere/c.png"),
                                      put("in/list.txt", "../elsewhere/c.png\n")),
    "absolute_missing_entry": put("in/list.txt", "/nonexistent/x.png\n"),
    "spaces_around": put("in/list.txt", "  a.png  \n"),
    "folder_named_list_txt": photo("in/list.txt/c.png"),
    "over_256_mib": sparse("in/list.txt", 256 * 2**20 + 1),
    "json_in_a_lst": put("in/list.txt", '{"images": []}\n'),
}


def list_cases() -> list[Case]:
    cases = [Case(f"list/{what}", explain("in/list.txt"), chain(photo(), setup))
             for what, setup in LISTS.items()]
    stdin = {"garbage": b"\xff\xfe\x00garbage\n", "empty": b"", "missing": b"nope.png\n",
             "folder_and_file": b"in\nin/a.png\n", "dev_null": b"/dev/null\n"}
    cases += [Case(f"list/stdin_{what}", explain("-"), photo(), stdin=data)
              for what, data in stdin.items()]
    return cases


# -- COCO --------------------------------------------------------------------------------------

COCO = "coco/annotations/instances_val.json"


def coco_doc() -> dict[str, Any]:
    return {"images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48},
                       {"id": 2, "file_name": "b.png", "width": 64, "height": 48}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [2, 3, 20, 10]},
                            {"id": 2, "image_id": 2, "category_id": 4, "bbox": [0, 0, 64, 48]}],
            "categories": [{"id": 3, "name": "class 1"}, {"id": 4, "name": "class 2"}]}


def coco_set(root: Path) -> None:
    photo("coco/images/a.png")(root)
    photo("coco/images/b.png", (50, 40))(root)
    (root / COCO).parent.mkdir(parents=True)
    (root / COCO).write_text(json.dumps(coco_doc()))


def _set(path: str, value: Any) -> Callable[[Any], Any]:
    """A document change: the value at `path` (keys and indices split by '.') set."""
    def change(doc: Any) -> Any:
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        elif value is DELETE:
            del node[last]
        else:
            node[last] = value
        return doc
    return change


DELETE = object()
COCO_CHANGES: dict[str, Callable[[Any], Any]] = {
    "array_at_top": lambda doc: [doc],
    "string_at_top": lambda doc: "images",
    "no_images": _set("images", DELETE),
    "images_an_object": _set("images", {"a": 1}),
    "images_null": _set("images", None),
    "image_without_file_name": _set("images.0.file_name", DELETE),
    "file_name_absolute": _set("images.0.file_name", "/etc/passwd"),
    "file_name_climbing_out": _set("images.0.file_name", "../../../outside.png"),
    "file_name_a_number": _set("images.0.file_name", 5),
    "file_name_empty": _set("images.0.file_name", ""),
    "file_name_with_nul": _set("images.0.file_name", "a\x00.png"),
    "bbox_nan": _set("annotations.0.bbox", [float("nan"), 1, 2, 3]),
    "bbox_infinity": _set("annotations.0.bbox", [1, 1, float("inf"), 3]),
    "bbox_three_numbers": _set("annotations.0.bbox", [1, 2, 3]),
    "bbox_strings": _set("annotations.0.bbox", ["1", "2", "3", "4"]),
    "bbox_null": _set("annotations.0.bbox", None),
    "bbox_negative_size": _set("annotations.0.bbox", [30, 30, -20, -20]),
    "bbox_far_outside": _set("annotations.0.bbox", [1e9, 1e9, 1e9, 1e9]),
    "negative_ids": lambda doc: _set("annotations.0.image_id", -1)(
        _set("images.0.id", -1)(doc)),
    "huge_ids": lambda doc: _set("annotations.0.image_id", 10**30)(
        _set("images.0.id", 10**30)(doc)),
    "boolean_id": _set("images.0.id", True),
    "float_category_id": _set("annotations.0.category_id", 3.5),
    "unknown_category": _set("annotations.0.category_id", 99),
    "unknown_image_id": _set("annotations.0.image_id", 99),
    "duplicate_image_ids": _set("images.1.id", 1),
    "no_categories": _set("categories", DELETE),
    "categories_a_string": _set("categories", "cats"),
    "category_name_a_number": _set("categories.0.name", 5),
    "category_name_with_escapes": _set("categories.0.name", "\x1b[31mred\x1b[0m\n"),
    "annotations_a_number": _set("annotations", 5),
    "annotation_a_string": _set("annotations.0", "box"),
    "width_a_string": _set("images.0.width", "wide"),
}
COCO_TEXTS: dict[str, bytes] = {
    "not_json": b"{",
    "empty_file": b"",
    "nested_100000_deep": b"[" * 100000 + b"]" * 100000,
    "bom": b"\xef\xbb\xbf" + json.dumps(coco_doc()).encode(),
    "non_utf8": json.dumps(coco_doc()).encode().replace(b"a.png", b"\xff.png"),
    "nan_token_in_width": json.dumps(coco_doc()).encode().replace(b'"width": 64', b'"width": NaN'),
}


def coco_cases() -> list[Case]:
    args = explain(COCO)
    cases = [Case(f"coco/{what}", args, chain(coco_set, edit_json(COCO, change)))
             for what, change in COCO_CHANGES.items()]
    cases += [Case(f"coco/{what}", args, chain(coco_set, put(COCO, text)))
              for what, text in COCO_TEXTS.items()]
    cases += [Case("coco/fifo", args, chain(coco_set, remove(COCO), fifo(COCO))),
              Case("coco/over_1_gib", args, chain(coco_set, sparse(COCO, 2**30 + 1)))]
    return cases


# -- Pascal VOC --------------------------------------------------------------------------------

LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">'
                    for i in range(1, 10))
          + ']><annotation><filename>a.png</filename><object><name>&lol9;</name>'
          '<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox>'
          '</object></annotation>')
VOC_TEXTS: dict[str, str | bytes] = {
    "not_xml": "<annotation><filename>a.png",
    "empty_file": "",
    "billion_laughs": LAUGHS,
    "external_entity": ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM '
                        '"file:///etc/hostname">]>' + voc_xml("a.png", "&x;")),
    "external_dtd": ('<?xml version="1.0"?><!DOCTYPE annotation SYSTEM '
                     '"http://127.0.0.1:9/x.dtd">' + voc_xml("a.png")),
    "no_filename": "<annotation><object><name>x</name></object></annotation>",
    "filename_climbing_out": voc_xml("../../../outside.png"),
    "filename_absolute": voc_xml("/etc/hostname"),
    "box_nan": voc_xml("a.png", box=("nan", "1", "9", "9")),
    "box_infinity": voc_xml("a.png", box=("1", "1", "inf", "9")),
    "box_1e999": voc_xml("a.png", box=("1", "1", "1e999", "9")),
    "box_words": voc_xml("a.png", box=("one", "1", "9", "9")),
    "box_empty": voc_xml("a.png", box=("", "", "", "")),
    "box_reversed": voc_xml("a.png", box=("30", "40", "4", "4")),
    "object_without_name": ("<annotation><filename>a.png</filename><object><bndbox><xmin>1"
                            "</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox>"
                            "</object></annotation>"),
    "name_with_escapes": voc_xml("a.png", "\x1b]0;owned\x07"),
    "nested_100000_deep": "<a>" * 100000 + "</a>" * 100000,
    "another_root": "<foo><filename>a.png</filename></foo>",
    "non_utf8": voc_xml("a.png").encode().replace(b"class 1", b"class \xff"),
}


def voc_set(root: Path) -> None:
    photo("voc/JPEGImages/a.png")(root)
    put("voc/Annotations/a.xml", voc_xml("a.png"))(root)


def voc_cases() -> list[Case]:
    args = explain("voc")
    xml = "voc/Annotations/a.xml"
    cases = [Case(f"voc/{what}", args, chain(voc_set, put(xml, text)))
             for what, text in VOC_TEXTS.items()]
    cases += [Case("voc/fifo", args, chain(voc_set, remove(xml), fifo(xml))),
              Case("voc/annotation_a_folder", args, chain(voc_set, remove(xml), folder(xml))),
              Case("voc/no_annotations", args, chain(voc_set, remove(xml))),
              Case("voc/no_images", args, chain(voc_set, remove("voc/JPEGImages/a.png")))]
    return cases


# -- YOLO --------------------------------------------------------------------------------------

YOLO_LABELS: dict[str, str | bytes] = {
    "class_1e9_without_names": "1000000000 0.5 0.5 0.2 0.2\n",
    "negative_class": "-1 0.5 0.5 0.2 0.2\n",
    "fractional_class": "1.5 0.5 0.5 0.2 0.2\n",
    "nan_centre": "1 nan 0.5 0.2 0.2\n",
    "infinite_size": "1 0.5 0.5 inf 0.2\n",
    "size_1e999": "1 0.5 0.5 1e999 0.2\n",
    "four_fields": "1 0.5 0.5 0.2\n",
    "six_fields": "1 0.5 0.5 0.2 0.2 0.9\n",
    "words": "cat x y w h\n",
    "outside_the_image": "1 5.0 -3.0 9.0 9.0\n",
    "crlf": "1 0.5 0.5 0.2 0.2\r\n",
    "non_utf8": b"1 0.5 0.5 0.2 0.2 \xff\n",
    "empty": "",
}
YOLO_NAMES: dict[str, tuple[str, str | bytes]] = {
    "class_beyond_names": ("classes.txt", "cat\n"),
    "names_non_utf8": ("classes.txt", b"cat\n\xff\xfe\n"),
    "yaml_unclosed_list": ("data.yaml", "names: [cat, dog\n"),
    "yaml_without_names": ("data.yaml", "nc: 2\n"),
    "yaml_names_a_string": ("data.yaml", "names: cats\n"),
    "yaml_sparse_keys": ("data.yaml", "names:\n  0: cat\n  99999999999: dog\n"),
    "yaml_python_tag": ("data.yaml", "names: !!python/object/apply:os.system ['touch owned']\n"),
    "yaml_anchors": ("data.yaml", "a: &a [x, x, x, x, x]\nb: &b [*a, *a, *a, *a]\n"
                                  "names: [*b, *b, *b, *b]\n"),
}


def yolo_set(root: Path) -> None:
    photo("yolo/images/a.png")(root)
    put("yolo/labels/a.txt", "1 0.5 0.5 0.2 0.2\n")(root)


def yolo_cases() -> list[Case]:
    args = explain("yolo")
    label = "yolo/labels/a.txt"
    cases = [Case(f"yolo/{what}", args, chain(yolo_set, put(label, text)))
             for what, text in YOLO_LABELS.items()]
    cases += [Case(f"yolo/{what}", args, chain(yolo_set, put(f"yolo/{name}", text)))
              for what, (name, text) in YOLO_NAMES.items()]
    cases += [
        Case("yolo/label_a_folder", args, chain(yolo_set, remove(label), folder(label))),
        Case("yolo/label_a_fifo", args, chain(yolo_set, remove(label), fifo(label))),
        Case("yolo/names_a_fifo", args, chain(yolo_set, fifo("yolo/classes.txt"))),
        Case("yolo/label_without_image", args, chain(yolo_set, put("yolo/labels/z.txt", "0"))),
        Case("yolo/zero_byte_image", args,
             chain(yolo_set, photo("yolo/images/c.png"), put("yolo/images/a.png", b""),
                   put("yolo/labels/c.txt", "1 0.5 0.5 0.2 0.2\n"))),
    ]
    return cases


def class_folder_cases() -> list[Case]:
    return [
        Case("classes/missing", explain("classes:nope")),
        Case("classes/empty_folder", explain("classes:cls"), folder("cls")),
        Case("classes/a_file", explain("classes:in/a.png"), photo()),
        Case("classes/empty_name", explain("classes:"), photo()),
        Case("classes/odd_folder_names", explain("classes:cls"),
             chain(photo("cls/\x1b[31mred/a.png"),
                   photo(os.fsdecode(b"cls/\xff\xfe/b.png")))),
        Case("classes/images_outside_class_folders", explain("classes:cls"),
             chain(photo("cls/a.png"), folder("cls/cat"))),
    ]


# -- OUT_DIR -----------------------------------------------------------------------------------

RUN = "base/run"  # an explain run of base/voc by base/cnn.onnx (`bad_inputs.make_kit`)
RERUN = ("explain", "cnn.onnx", "voc", "-o", "run", "--raw", "--no-overlay")


def out_cases() -> list[Case]:
    """OUT_DIR's states: explain into in/a.png's OUT_DIR, or the kit's run rerun as made."""
    kit = ("cnn.onnx", "cnn.xml", "base")
    copied = chain(photo(), lambda root: shutil.copytree(root / RUN, root / "out"))
    rerun: Place = {"kit": ("base",), "cwd": "base", "out": (RUN,)}
    cases = [
        Case("out/a_file", explain("in/a.png"), chain(photo(), put("out", "mine\n"))),
        Case("out/another_runs_options", explain("base/photos", extra=("--targets", "topk:2")),
             copied, kit),
        Case("out/another_models_run", ("explain", "cnn.xml", "base/photos", *QUIET),
             copied, kit),
        Case("out/maps_a_file", explain("in/a.png"), chain(photo(), put("out/maps", "x"))),
        Case("out/maps_a_dangling_link", explain("in/a.png"),
             chain(photo(), link("out/maps", "nowhere"))),
        Case("out/raw_a_fifo", explain("in/a.png", extra=("--raw",)),
             chain(photo(), fifo("out/raw"))),
        Case("out/link_to_a_foreign_folder", explain("in/a.png"),
             chain(photo(), put("elsewhere/notes.txt", "mine\n"), link("out", "elsewhere")),
             out=("out", "elsewhere")),
        Case("out/dangling_link", explain("in/a.png"), chain(photo(), link("out", "gone/deeper")),
             out=("out", "gone")),
        Case("out/run_json_not_json", explain("in/a.png"),
             chain(photo(), put("out/run.json", "{"))),
        Case("out/run_json_a_folder", explain("in/a.png"),
             chain(photo(), folder("out/run.json"))),
        Case("out/results_without_run_json", explain("in/a.png"),
             chain(photo(), put("out/results.jsonl", "{}\n"))),
        Case("out/under_a_file", ("explain", "cnn.onnx", "in/a.png", "-o", "f/out",
                                  "--no-overlay"), chain(photo(), put("f", "x")), out=("f",)),
        Case("out/name_of_300_chars", ("explain", "cnn.onnx", "in/a.png", "-o", "o" * 300,
                                       "--no-overlay"), photo(), out=("o" * 300,)),
        Case("out/empty_name", ("explain", "cnn.onnx", "in/a.png", "-o", ""), photo()),
        Case("out/dev_null", ("explain", "cnn.onnx", "in/a.png", "-o", "/dev/null"), photo()),
        Case("out/inside_the_input_folder", ("explain", "cnn.onnx", "in", "-o", "in/out",
                                             "--no-overlay"), photo(), out=("in/out",)),
        Case("out/report_a_foreign_folder", explain("in/a.png", extra=("--report",)),
             chain(photo(), put("out/report/mine.txt", "mine\n"))),
        Case("out/report_a_file", explain("in/a.png", extra=("--report",)),
             chain(photo(), put("out/report", "mine\n"))),
        Case("out/stale_lock_of_garbage", explain("in/a.png"),
             chain(photo(), put("out/.xaigraph.lock", b"\xff" * 100))),
        Case("out/lock_a_folder", explain("in/a.png"),
             chain(photo(), folder("out/.xaigraph.lock"))),
        Case("out/rerun/results_garbage", RERUN,
             put(f"{RUN}/results.jsonl", "garbage\n{\n[1]\nnull\n\"x\"\n"), **rerun),
        Case("out/rerun/results_fifo", RERUN,
             chain(remove(f"{RUN}/results.jsonl"), fifo(f"{RUN}/results.jsonl")), **rerun),
        Case("out/rerun/results_dev_zero", RERUN,
             chain(remove(f"{RUN}/results.jsonl"), link(f"{RUN}/results.jsonl", "/dev/zero")),
             **rerun),
        Case("out/rerun/results_non_utf8", RERUN, put(f"{RUN}/results.jsonl", b"\xff\xfe\n"),
             **rerun),
        Case("out/rerun/results_a_folder", RERUN,
             chain(remove(f"{RUN}/results.jsonl"), folder(f"{RUN}/results.jsonl")), **rerun),
        Case("out/rerun/partial_garbage", RERUN,
             put(f"{RUN}/.results.jsonl.partial", "{\"key\": 5}\nnot json\n"), **rerun),
        Case("out/rerun/partial_fifo", RERUN, fifo(f"{RUN}/.results.jsonl.partial"), **rerun),
        Case("out/rerun/record_naming_outside_files", RERUN,
             edit_lines(f"{RUN}/results.jsonl", lambda rs: [json.dumps(
                 {**r, "targets": [{**t, "map": "../../../etc/hostname"} for t in r["targets"]]})
                 for r in rs]), **rerun),
        Case("out/rerun/map_replaced_by_a_folder", RERUN, _maps_folders, **rerun),
    ]
    return cases


def _maps_folders(root: Path) -> None:
    for path in (root / RUN / "maps").iterdir():
        path.unlink()
        path.mkdir()


# -- models ------------------------------------------------------------------------------------

def _truncated_bin(root: Path) -> None:
    data = (root / "cnn.bin").read_bytes()
    (root / "cnn.bin").write_bytes(data[: len(data) // 2])


def _external_data_missing(root: Path) -> None:
    import onnx

    model = onnx.load(root / "cnn.onnx")
    onnx.save(model, root / "ext.onnx", save_as_external_data=True, location="ext.data",
              size_threshold=0)
    (root / "ext.data").unlink()


MODEL_FILES: dict[str, tuple[str, Setup, tuple[str, ...]]] = {
    # what -> (the MODEL argument, its setup, the kit entries it needs)
    "missing": ("nope.onnx", lambda root: None, ()),
    "empty_onnx": ("m.onnx", put("m.onnx", b""), ()),
    "text_named_onnx": ("m.onnx", put("m.onnx", "not a model\n"), ()),
    "random_bytes_onnx": ("m.onnx", put("m.onnx", bytes(range(256)) * 8), ()),
    "text_named_xml": ("m.xml", put("m.xml", "not a model\n"), ()),
    "xml_billion_laughs": ("m.xml", put("m.xml", LAUGHS), ()),
    "ir_without_bin": ("cnn.xml", remove("cnn.bin"), ("cnn.xml",)),
    "ir_truncated_bin": ("cnn.xml", _truncated_bin, ("cnn.xml",)),
    "onnx_external_data_missing": ("ext.onnx", _external_data_missing, ("cnn.onnx",)),
    "a_folder": ("m.onnx", folder("m.onnx"), ()),
    "a_fifo": ("m.onnx", fifo("m.onnx"), ()),
    "link_to_dev_zero": ("m.onnx", link("m.onnx", "/dev/zero"), ()),
    "unknown_suffix": ("m.pb", lambda root: shutil.copy(root / "cnn.onnx", root / "m.pb"),
                       ("cnn.onnx",)),
    "two_inputs": ("two_inputs.onnx", lambda root: None, ("two_inputs.onnx",)),
    "zero_sized_dims": ("zero_dims.onnx", lambda root: None, ("zero_dims.onnx",)),
    "input_100000px": ("huge_input.onnx", lambda root: None, ("huge_input.onnx",)),
    "no_image_input": ("flat.onnx", lambda root: None, ("flat.onnx",)),
    "int64_input": ("int_input.onnx", lambda root: None, ("int_input.onnx",)),
    "nan_scores": ("nan_scores.onnx", lambda root: None, ("nan_scores.onnx",)),
}


def model_cases() -> list[Case]:
    """Each bad model through explain, inspect and insert."""
    cases = []
    for what, (model, setup, kit) in MODEL_FILES.items():
        prepared = chain(photo(), setup)
        cases += [
            Case(f"model/{what}/explain", ("explain", model, "in/a.png", *QUIET), prepared, kit),
            Case(f"model/{what}/inspect", ("inspect", model), prepared, kit, out=()),
            Case(f"model/{what}/insert", ("insert", model, "-o", "out.xml"), prepared, kit,
                 out=("out.xml", "out.bin")),
        ]
    cases += [
        Case("model/dynamic_size_too_small", ("explain", "dynamic.onnx", "in/a.png", *QUIET,
                                              "--size", "1"), photo(), ("dynamic.onnx",)),
        Case("model/detector_rise_threshold_1", ("explain", "det.onnx", "in/a.png", *QUIET,
                                                 "--method", "rise", "--num-masks", "4",
                                                 "--score-threshold", "1"),
             photo(), ("det.onnx",)),
        Case("model/augmented_other_targets", ("explain", "aug.xml", "in/a.png", *QUIET,
                                               "--targets", "topk:3"), photo(), ("aug.xml",)),
        Case("model/augmented_with_rise", ("explain", "aug.xml", "in/a.png", *QUIET,
                                           "--method", "rise", "--num-masks", "4"),
             photo(), ("aug.xml",)),
    ]
    return cases


def compiler_cases() -> list[Case]:
    """insert, strip and inspect on what they are given besides a bad model."""
    ins = ("insert", "cnn.onnx", "-o", "out.xml")
    outs = ("out.xml", "out.bin")
    return [
        Case("insert/output_exists", ins, put("out.xml", "mine\n"), out=outs),
        Case("insert/output_a_folder", ins, folder("out.xml"), out=()),
        Case("insert/output_in_a_missing_folder", ("insert", "cnn.onnx", "-o", "no/out.xml"),
             out=("no",)),
        Case("insert/output_under_a_file", ("insert", "cnn.onnx", "-o", "f/out.xml"),
             put("f", "x"), out=()),
        Case("insert/output_suffix_txt", ("insert", "cnn.onnx", "-o", "out.txt"),
             out=("out.txt",)),
        Case("insert/output_is_the_input", ("insert", "cnn.onnx", "-o", "cnn.onnx"), out=()),
        Case("insert/output_is_the_input_forced", ("insert", "cnn.onnx", "-o", "cnn.onnx",
                                                   "--force"), out=("cnn.onnx",)),
        Case("insert/targets_garbage", (*ins, "--targets", "topk:x"), out=outs),
        Case("insert/targets_topk_0", (*ins, "--targets", "topk:0"), out=outs),
        Case("insert/targets_out_of_range", (*ins, "--targets", "7,99"), out=outs),
        Case("insert/size_0", (*ins, "--preprocess", "--size", "0,0"), out=outs),
        Case("insert/mean_nan", (*ins, "--preprocess", "--mean", "nan"), out=outs),
        Case("insert/std_0", (*ins, "--preprocess", "--std", "0"), out=outs),
        Case("insert/labels_fifo", (*ins, "--labels", "l.txt"), fifo("l.txt"), out=outs),
        Case("insert/labels_too_few", (*ins, "--labels", "l.txt"), put("l.txt", "cat\n"),
             out=outs),
        Case("insert/sample_truncated_png", (*ins, "--sample", "s.png"),
             put("s.png", encoded()[:50]), out=outs),
        Case("insert/sample_fifo", (*ins, "--sample", "s.npy"), fifo("s.npy"), out=outs),
        Case("insert/sample_dev_zero", (*ins, "--sample", "s.png"), link("s.png", "/dev/zero"),
             out=outs),
        Case("insert/sample_bomb", (*ins, "--sample", "s.png"), put("s.png", bomb_png()),
             out=outs),
        Case("insert/sample_npy_wrong_shape", (*ins, "--sample", "s.npy"),
             put("s.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, "
                 b"'shape': (2, 2), }" + b" " * 59 + b"\n" + b"\x00" * 16), out=outs),
        Case("insert/num_anchors_0", (*ins, "--num-anchors", "0"), out=outs),
        Case("insert/method_bogus", (*ins, "--method", "bogus"), out=outs),
        Case("insert/target_layer_missing", (*ins, "--target-layer", "nosuch"), out=outs),
        Case("insert/augmented_again", ("insert", "aug.xml", "-o", "out.xml"), kit=("aug.xml",),
             out=outs),
        Case("strip/plain_model", ("strip", "cnn.onnx", "-o", "out.onnx"), out=("out.onnx",)),
        Case("strip/output_exists", ("strip", "aug.xml", "-o", "out.xml"),
             put("out.xml", "mine\n"), kit=("aug.xml",)),
        Case("strip/onnx_from_ir", ("strip", "aug.xml", "-o", "out.onnx"), kit=("aug.xml",),
             out=("out.onnx",)),
        Case("strip/missing", ("strip", "nope.xml", "-o", "out.xml"), kit=()),
        Case("strip/text_model", ("strip", "m.xml", "-o", "out.xml"), put("m.xml", "x"), kit=()),
        Case("strip/truncated_bin", ("strip", "cnn.xml", "-o", "out.xml"), _truncated_bin,
             kit=("cnn.xml",), out=outs),
        Case("inspect/target_layer_missing", ("inspect", "cnn.onnx", "--target-layer", "nosuch"),
             out=()),
        Case("inspect/class_output_missing", ("inspect", "cnn.onnx", "--class-output", "nosuch"),
             out=()),
        Case("inspect/json_of_a_text_model", ("inspect", "m.onnx", "--json"),
             put("m.onnx", "x"), kit=(), out=()),
    ]


# -- options -----------------------------------------------------------------------------------

OPTIONS: dict[str, tuple[str, ...]] = {
    "size_0": ("--size", "0,0"),
    "size_100000": ("--size", "100000,100000"),
    "size_negative": ("--size", "-1"),
    "size_words": ("--size", "abc"),
    "size_three_numbers": ("--size", "1,2,3"),
    "size_other_than_the_models": ("--size", "16"),
    "opacity_2": ("--opacity", "2"),
    "opacity_nan": ("--opacity", "nan"),
    "colormap_bogus": ("--colormap", "bogus"),
    "targets_garbage": ("--targets", "%%%"),
    "targets_out_of_range": ("--targets", "99"),
    "targets_negative": ("--targets", "-1"),
    "targets_unknown_name": ("--targets", "no such class"),
    "targets_known_name": ("--targets", "class 2"),
    "targets_topk_0": ("--targets", "topk:0"),
    "targets_topk_negative": ("--targets", "topk:-1"),
    "targets_topk_99999": ("--targets", "topk:99999"),
    "targets_empty": ("--targets", ""),
    "targets_repeated": ("--targets", "1,1,1"),
    "targets_all_max_maps_1": ("--targets", "all", "--max-maps", "1"),
    "max_maps_0": ("--max-maps", "0"),
    "batch_size_0": ("--batch-size", "0"),
    "batch_size_negative": ("--batch-size", "-5"),
    "batch_size_2_to_the_70": ("--batch-size", str(2**70)),
    "mean_words": ("--mean", "a,b"),
    "mean_two_numbers": ("--mean", "1,2"),
    "mean_nan": ("--mean", "nan"),
    "std_0": ("--std", "0"),
    "std_infinity": ("--std", "inf"),
    "scale_nan": ("--scale", "nan"),
    "scale_0": ("--scale", "0"),
    "crop_fraction_0": ("--resize", "center_crop", "--crop-fraction", "0"),
    "crop_fraction_nan": ("--resize", "center_crop", "--crop-fraction", "nan"),
    "pad_value_300": ("--resize", "letterbox", "--pad-value", "300"),
    "resize_bogus": ("--resize", "bogus"),
    "interpolation_bogus": ("--interpolation", "bogus"),
    "layout_nhwc": ("--layout", "NHWC"),
    "method_bogus": ("--method", "bogus"),
    "runtime_bogus": ("--runtime", "bogus"),
    "precision_bogus": ("--precision", "bogus"),
    "engine_bogus": ("--engine", "bogus"),
    "ray_actors_0": ("--engine", "ray", "--ray-actors", "0"),
    "num_masks_0": ("--method", "rise", "--num-masks", "0"),
    "mask_cells_1000": ("--method", "rise", "--num-masks", "4", "--mask-cells", "1000"),
    "mask_prob_0": ("--method", "rise", "--mask-prob", "0"),
    "mask_prob_nan": ("--method", "rise", "--mask-prob", "nan"),
    "seed_negative": ("--method", "rise", "--seed", "-1"),
    "preset_bogus": ("--method", "rise", "--preset", "bogus"),
    "detector_output_on_a_classifier": ("--method", "rise", "--detector-output", "yolo"),
    "postprocess_missing_module": ("--method", "rise", "--postprocess", "no_such_mod:fn"),
    "postprocess_not_a_pair": ("--method", "rise", "--postprocess", "json"),
    "score_threshold_2": ("--score-threshold", "2"),
    "class_output_missing": ("--class-output", "nosuch"),
    "target_layer_missing": ("--target-layer", "nosuch"),
    "cam_without_a_gap": ("--method", "cam", "--target-layer", "relu1"),
    "unknown_option": ("--bogus",),
    "labels_missing": ("--labels", "nope.txt"),
    "labels_too_few": ("--labels", "in/l.txt"),
    "rise_json": ("--method", "rise", "--num-masks", "4", "--json"),
    "error_json": ("--targets", "99", "--json"),
    "aise_speed": ("--method", "aise", "--preset", "speed"),
}
LABELS: dict[str, Setup] = {
    "labels_fifo": fifo("in/l.txt"),
    "labels_empty": put("in/l.txt", ""),
    "labels_non_utf8": put("in/l.txt", b"a\nb\n\xff\nc\nd\n"),
    "labels_a_folder": folder("in/l.txt"),
    "labels_dev_zero": link("in/l.txt", "/dev/zero"),
    "labels_with_escapes": put("in/l.txt", "a\n\x1b]0;owned\x07\nc\nd\ne\n"),
}


def option_cases() -> list[Case]:
    cases = [Case(f"option/{what}", explain("in/a.png", extra=extra),
                  chain(photo(), put("in/l.txt", "cat\ndog\n")))
             for what, extra in OPTIONS.items()]
    cases += [Case(f"option/{what}", explain("in/a.png", extra=("--labels", "in/l.txt")),
                   chain(photo(), setup)) for what, setup in LABELS.items()]
    cases += [Case("option/no_output", ("explain", "cnn.onnx", "in/a.png"), photo(), out=()),
              Case("option/no_inputs", ("explain", "cnn.onnx", "-o", "out")),
              Case("option/unknown_command", ("explian", "cnn.onnx"), out=())]
    return cases


# -- eval --------------------------------------------------------------------------------------

EVAL = ("eval", "cnn.onnx", "base/voc", "-o", "ev", "--methods", "reciprocam",
        "--metrics", "pointing_game", "--resamples", "10")


def _eval(*extra: str, data: str = "base/voc", model: str = "cnn.onnx") -> tuple[str, ...]:
    args = list(EVAL)
    args[1], args[2] = model, data
    for i in range(0, len(extra), 2):  # an option given replaces the default's value
        if extra[i] in args:
            args[args.index(extra[i]) + 1] = extra[i + 1]
        else:
            args += extra[i:i + 2]
    return tuple(args)


def eval_cases() -> list[Case]:
    base = ("cnn.onnx", "base")
    ev: Place = {"kit": base, "out": ("ev",)}
    no_raw = chain(lambda root: shutil.copytree(root / RUN, root / "nr"), remove("nr/raw"))
    return [
        Case("eval/no_ground_truth", _eval(data="base/photos"), **ev),
        Case("eval/metrics_bogus", _eval("--metrics", "bogus"), **ev),
        Case("eval/metrics_empty", _eval("--metrics", ""), **ev),
        Case("eval/metrics_all_and_bogus", _eval("--metrics", "all,bogus"), **ev),
        Case("eval/methods_bogus", _eval("--methods", "bogus"), **ev),
        Case("eval/methods_empty", _eval("--methods", ""), **ev),
        Case("eval/methods_repeated", _eval("--methods", "reciprocam,reciprocam"), **ev),
        Case("eval/tolerance_nan", _eval("--tolerance", "nan"), **ev),
        Case("eval/tolerance_negative", _eval("--tolerance", "-1"), **ev),
        Case("eval/tolerance_infinity", _eval("--tolerance", "inf"), **ev),
        Case("eval/steps_0", _eval("--steps", "0", "--metrics", "insertion_auc"), **ev),
        Case("eval/steps_negative", _eval("--steps", "-1", "--metrics", "deletion_auc"), **ev),
        Case("eval/resamples_0", _eval("--resamples", "0"), **ev),
        Case("eval/from_explain_missing", _eval("--from-explain", "nope"), **ev),
        Case("eval/from_explain_a_file", _eval("--from-explain", "base/cnn.onnx"), **ev),
        Case("eval/from_explain_without_raw", _eval("--from-explain", "nr"), no_raw, **ev),
        Case("eval/from_explain_of_another_model", _eval("--from-explain", RUN, model="cnn.xml"),
             kit=(*base, "cnn.xml"), out=("ev",)),
        Case("eval/dir_a_file", _eval(), put("ev", "mine\n"), **ev),
        Case("eval/dir_empty_name", _eval("-o", ""), **ev),
        Case("eval/foreign_metrics_json", _eval(), put("ev/metrics.json", "{\"mine\": 1}"), **ev),
        Case("eval/metrics_md_a_folder", _eval(), folder("ev/metrics.md"), **ev),
        Case("eval/detector", _eval(model="det.onnx"), kit=(*base, "det.onnx"), out=("ev",)),
        Case("eval/two_inputs", _eval(model="two_inputs.onnx"), kit=(*base, "two_inputs.onnx"),
             out=("ev",)),
        Case("eval/classes_folder", _eval(data="classes:cls"),
             chain(photo("cls/cat/a.png"), photo("cls/dog/b.png")), **ev),
        Case("eval/nan_scores", _eval(model="nan_scores.onnx", data="base/voc"),
             kit=(*base, "nan_scores.onnx"), out=("ev",)),
        Case("eval/method_folder_a_file", _eval(), put("ev/reciprocam", "mine\n"), **ev),
    ]


# -- report ------------------------------------------------------------------------------------

EV = "base/ev"  # an eval of base/voc by base/cnn.onnx, reciprocam


def _first_target(change: Callable[[dict[str, Any]], None]) -> Callable[[list[dict[str, Any]]],
                                                                        list[str]]:
    def lines(records: list[dict[str, Any]]) -> list[str]:
        change(records[0]["targets"][0])
        return [json.dumps(r) for r in records]
    return lines


def _first_record(**values: Any) -> Callable[[list[dict[str, Any]]], list[str]]:
    return lambda rs: [json.dumps({**rs[0], **values}), *map(json.dumps, rs[1:])]


def _one_map(root: Path) -> Path:
    return sorted((root / RUN / "maps").iterdir())[0]


def report_cases() -> list[Case]:
    results = f"{RUN}/results.jsonl"
    run: Place = {"kit": ("base",), "out": (f"{RUN}/report",)}
    ev: Place = {"kit": ("base",), "out": (f"{EV}/report",)}
    rep = ("report", RUN)
    return [
        Case("report/missing_dir", ("report", "nope"), out=("nope",), kit=()),
        Case("report/empty_dir", ("report", "d"), folder("d"), out=("d/report",), kit=()),
        Case("report/dir_a_file", ("report", "d"), put("d", "x"), out=(), kit=()),
        Case("report/results_garbage_lines", rep, put(results, "garbage\n{\n[1]\n"), **run),
        Case("report/results_empty", rep, put(results, ""), **run),
        Case("report/results_non_utf8", rep, put(results, b"\xff\xfe\n"), **run),
        Case("report/results_fifo", rep, chain(remove(results), fifo(results)), **run),
        Case("report/results_dev_zero", rep, chain(remove(results), link(results, "/dev/zero")),
             **run),
        Case("report/results_nan_token", rep, edit_lines(results, lambda rs: [
            json.dumps(r).replace(str(r["predictions"][0]["score"]), "NaN") for r in rs]), **run),
        Case("report/map_climbing_out", rep, chain(put("outside.png", encoded()), edit_lines(
            results, _first_target(lambda t: t.update(map="../../outside.png")))), **run),
        Case("report/map_absolute", rep, edit_lines(
            results, _first_target(lambda t: t.update(map="/etc/hostname"))), **run),
        Case("report/map_link_out", rep, chain(
            put("outside.png", encoded()), _map_link_out,
            edit_lines(results, _first_target(lambda t: t.update(map="maps/x.png")))), **run),
        Case("report/map_a_fifo", rep, _map_fifo, **run),
        Case("report/map_truncated", rep, lambda root: _one_map(root).write_bytes(
            _one_map(root).read_bytes()[:40]), **run),
        Case("report/raw_corrupt", rep, lambda root: [
            p.write_bytes(b"\x93NUMPY garbage") for p in (root / RUN / "raw").iterdir()], **run),
        Case("report/original_deleted", rep, remove("base/voc/JPEGImages/a.png"), **run),
        Case("report/key_climbing_out", rep, edit_lines(results, _first_record(
            key="../../../evil")), **run),
        Case("report/path_absolute", rep, edit_lines(results, _first_record(
            path="/etc/hostname")), **run),
        Case("report/size_1e9", rep, edit_lines(results, _first_record(
            width=10**9, height=10**9)), **run),
        Case("report/status_weird", rep, edit_lines(results, _first_record(status="weird")),
             **run),
        Case("report/run_json_not_json", rep, put(f"{RUN}/run.json", "{"), **run),
        Case("report/run_json_an_array", rep, put(f"{RUN}/run.json", "[]"), **run),
        Case("report/run_json_missing", rep, remove(f"{RUN}/run.json"), **run),
        Case("report/existing_foreign_folder", rep, put(f"{RUN}/report/mine.txt", "x"), **run),
        Case("report/output_a_file", (*rep, "-o", "r"), put("r", "mine\n"), kit=("base",),
             out=("r",)),
        Case("report/output_elsewhere", (*rep, "-o", "r"), kit=("base",), out=("r",)),
        Case("report/output_empty_name", (*rep, "-o", ""), **run),
        Case("report/top_k_0", (*rep, "--top-k", "0"), **run),
        Case("report/title_hostile",
             (*rep, "--title", "</script><script>alert(1)</script>\x1b]0;x"), **run),
        Case("report/metrics_nan", ("report", EV), _nan_metrics, **ev),
        Case("report/metrics_method_climbing_out", ("report", EV), edit_json(
            f"{EV}/metrics.json", lambda d: {**d, "methods": ["../run"]}), **ev),
        Case("report/metrics_method_missing", ("report", EV), remove(f"{EV}/reciprocam"), **ev),
        Case("report/metrics_not_json", ("report", EV), put(f"{EV}/metrics.json", "{"), **ev),
        Case("report/metrics_methods_a_string", ("report", EV), edit_json(
            f"{EV}/metrics.json", lambda d: {**d, "methods": "reciprocam"}), **ev),
    ]


def _map_link_out(root: Path) -> None:
    path = _one_map(root)
    path.unlink()
    path.with_name("x.png").symlink_to(root / "outside.png")


def _map_fifo(root: Path) -> None:
    path = _one_map(root)
    path.unlink()
    os.mkfifo(path)


def _nan_metrics(root: Path) -> None:
    path = root / EV / "metrics.json"
    doc = json.loads(path.read_text())
    for stats in doc["summary"]["reciprocam"].values():
        stats["mean"] = float("nan")
    for row in doc["images"]:
        row["pointing_game"] = float("inf")
    path.write_text(json.dumps(doc))


# -- the matrix --------------------------------------------------------------------------------

CASES: list[Case] = [*image_cases(), *list_cases(), *coco_cases(), *voc_cases(), *yolo_cases(),
                     *class_folder_cases(), *out_cases(), *model_cases(), *compiler_cases(),
                     *option_cases(), *eval_cases(), *report_cases()]
BY_NAME = {case.name: case for case in CASES}
assert len(BY_NAME) == len(CASES), "two cases of one name"


def sample(size: int = 40, seed: int = 21) -> list[Case]:
    """`size` cases, fixed by `seed`: each family's share, at least one of each."""
    rng = random.Random(seed)
    families: dict[str, list[Case]] = {}
    for case in CASES:
        families.setdefault(case.name.split("/")[0], []).append(case)
    picked = [rng.choice(cases) for cases in families.values()]
    rest = [c for c in CASES if c not in picked]
    return sorted(picked + rng.sample(rest, size - len(picked)), key=CASES.index)
