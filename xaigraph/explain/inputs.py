"""INPUT arguments to an ordered list of images, with their ground truth (docs/runtime.md).

`collect(inputs)` takes each argument as one of:

- an image file (any suffix but `.json`, `.txt`, `.lst`): that image. A file that is not an
  image is found when it is read, and reported for that image only;
- a folder: its images (`.png .jpg .jpeg .bmp .tif .tiff .webp .gif`, any case),
  recursively, sorted by relative path; hidden files and folders skipped;
- `classes:DIR`: an ImageNet-style class folder. Each sub-folder of DIR is a class whose
  images (recursively) are labelled with its name; `Dataset.classes` are the sorted
  sub-folder names. Only with the prefix: a folder of sub-folders is otherwise a plain folder;
- a folder with `Annotations/` and `JPEGImages/`: a Pascal VOC data set, every
  `Annotations/*.xml`, sorted;
- a folder with `images/` and `labels/`: a YOLO data set, the images under `images/`, boxes
  from `labels/<same path>.txt`;
- a `.json` file with `images` and `annotations`: a COCO data set (`instances_*.json`);
- a `.txt` or `.lst` file: a list of paths, one a line (`#` comments and blank lines ignored;
  relative paths are relative to the list's folder);
- `-`: paths on standard input, one a line (relative to the current folder).

Ground truth, always in original image pixels as x1 y1 x2 y2 (continuous coordinates: a box
over pixel columns 0..9 is x1 = 0, x2 = 10):

- COCO: `bbox` [x, y, w, h] -> [x, y, x + w, y + h]; classes are the categories sorted by id,
  `Box.label` the index in that list. An image's file is looked up, in this order, in the
  json's folder, its `images/` sub-folder, `../images/`, `../<split>/` and `../images/<split>/`
  where `<split>` is the json's name after `instances_` (`instances_val2017.json` -> `val2017`);
  the first folder that holds the first image is used for all. Annotations of an unknown image
  id are refused; images without annotations are kept with no boxes.
- VOC: `bndbox` pixel indices are 1-based and inclusive: [xmin - 1, ymin - 1, xmax, ymax].
  Objects marked `difficult` are kept (a point on them counts as on the object). Classes: the
  sorted names found in the annotations.
- YOLO: `class cx cy w h` normalised to the image size, read from the image's header; class
  names from `classes.txt`, `obj.names` or the `names:` of `data.yaml` in the data set's folder
  (else `class N`). A missing label file means no boxes. A class id must be one the names
  file names; without a names file, below `MAX_YOLO_CLASSES` (10 000). An image whose size
  cannot be read keeps no boxes here: it fails when it is read, as that image's error.
- Every box (COCO, VOC, YOLO) must have finite values: NaN, infinity and numbers that
  overflow to it are refused, naming the file and the annotation (or line).

Keys (output file stems): the path relative to the folder (or data set image folder) it came
from, or the file name, without its suffix; `/` kept; NFC-normalised, other characters than
Unicode letters and digits, `-`, `_`, `.` replaced by `_` (`io.names.file_safe`). Keys
that collide get the suffix appended (`a.jpg`, `a.png` -> `a_jpg`, `a_png`), then `_2`,
`_3`, ... if they still collide.

Errors (`BadInputError`, one line naming the file): an INPUT that does not exist, a folder
without images, a listed image that does not exist, an annotation file that does not parse
(JSON nested too deeply included) or lacks a required field, a COCO id that is not a number
or a string, several annotated data sets with different class lists. Every text input (list
files, standard input, COCO `.json`, VOC `.xml`, YOLO label and names files) is read by
`xaigraph.textfile`: a regular file (a FIFO or a device is refused at once, never read), at
most 256 MiB (a COCO `.json` 1 GiB), UTF-8.
"""

from __future__ import annotations

import json
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from xaigraph import textfile
from xaigraph.errors import BadInputError
from xaigraph.explain.io.names import file_safe
from xaigraph.explain.io.rundir import is_output

__all__ = ["IMAGE_SUFFIXES", "MAX_YOLO_CLASSES", "Box", "Dataset", "Item", "collect"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"})
LIST_SUFFIXES = (".txt", ".lst")
MAX_YOLO_CLASSES = 10_000  # class ids a YOLO set without a names file may use


@dataclass(frozen=True)
class Box:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in original image pixels
    label: int | None  # index in Dataset.classes
    name: str


@dataclass(frozen=True)
class Item:
    index: int
    path: Path
    key: str
    boxes: tuple[Box, ...] = ()
    labels: tuple[str, ...] = ()
    source: str = "file"


@dataclass
class Dataset:
    items: list[Item]
    classes: list[str] | None = None
    source: str = "file"
    sources: list[str] = field(default_factory=list)


@dataclass
class _Found:
    """Items of one argument before indexing: (path, key stem, boxes, labels)."""

    rows: list[tuple[Path, str, tuple[Box, ...], tuple[str, ...]]]
    source: str
    classes: list[str] | None = None


def collect(inputs: Sequence[str], *, stdin: TextIO | None = None) -> Dataset:
    """The images of `inputs`, in order (see the module's docstring)."""
    if not inputs:
        raise BadInputError("no INPUT given: name image files, folders, a list or '-'")
    found = [_one(arg, stdin) for arg in inputs]
    annotated = [(arg, f) for arg, f in zip(inputs, found, strict=True)
                 if f.classes is not None]
    classes = annotated[0][1].classes if annotated else None
    for arg, other in annotated[1:]:
        if other.classes != classes:
            raise BadInputError(f"{arg}: its classes differ from those of {annotated[0][0]}; "
                                "explain one data set at a time")
    rows = [row for f in found for row in f.rows]
    keys = _unique_keys([(path, stem) for path, stem, _, _ in rows])
    items = [Item(i, path, key, boxes, labels, f.source)
             for i, ((path, _, boxes, labels), key, f) in enumerate(
                 zip(rows, keys, (f for f in found for _ in f.rows), strict=True))]
    kinds = sorted({f.source for f in found})
    return Dataset(items, classes, kinds[0] if len(kinds) == 1 else "mixed", kinds)


def _one(arg: str, stdin: TextIO | None) -> _Found:
    if arg == "-":
        import sys

        text = textfile.read_stream(stdin or sys.stdin, where="standard input")
        return _Found(_listed(text.splitlines(), Path.cwd(), "standard input"), "stdin")
    if arg.startswith("classes:"):
        return _class_folder(_existing(arg[len("classes:"):]))
    path = _existing(arg)
    if path.is_dir():
        if (path / "Annotations").is_dir() and (path / "JPEGImages").is_dir():
            return _voc(path)
        if (path / "images").is_dir() and (path / "labels").is_dir():
            return _yolo(path)
        return _Found([(p, _stem(p, path), (), ()) for p in _images_in(path)], "folder")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _coco(path)
    if suffix in LIST_SUFFIXES:
        lines = _read_text(path).splitlines()
        return _Found(_listed(lines, path.parent, str(path)), "list")
    return _Found([(path, _stem(path, None), (), ())], "file")


def _existing(arg: str) -> Path:
    path = Path(arg)
    if not path.exists():
        raise BadInputError(f"input not found: {arg}")
    return path


def _read_text(path: Path, limit: int = textfile.MAX_TEXT_BYTES) -> str:
    """A text input: a regular file of at most `limit` bytes, UTF-8 (`xaigraph.textfile`)."""
    return textfile.read_text(path, limit=limit)


def _present(path: Path) -> bool:
    """Whether an optional input file (a YOLO label or names file) is there: anything at
    the path, which `_read_text` then refuses unless it is a regular file."""
    return path.exists() or path.is_symlink()


def _images_in(folder: Path, *, required: bool = True) -> list[Path]:
    """The image files under `folder`, recursively, sorted by relative path."""
    found: list[tuple[str, Path]] = []
    for root, dirs, files in os.walk(folder):
        # hidden folders, and xaigraph's own outputs (an OUT_DIR inside the folder)
        dirs[:] = [d for d in dirs if not d.startswith(".") and not is_output(Path(root, d))]
        for name in files:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES:
                full = Path(root, name)
                found.append((full.relative_to(folder).as_posix(), full))
    if required and not found:
        raise BadInputError(f"{folder}: no images in this folder (looked for "
                            f"{', '.join(sorted(IMAGE_SUFFIXES))})")
    return [p for _, p in sorted(found)]


def _stem(path: Path, root: Path | None) -> str:
    rel = Path(path.name)
    if root is not None and path.is_relative_to(root) and ".." not in path.parts:
        rel = path.relative_to(root)  # else (an absolute or '..' name in an annotation file)
    stem = rel.with_suffix("").as_posix() if rel.suffix else rel.as_posix()
    return file_safe(stem, keep="/").strip("/") or "_"


def _listed(lines: Iterable[str], base: Path, where: str) -> list[
        tuple[Path, str, tuple[Box, ...], tuple[str, ...]]]:
    rows: list[tuple[Path, str, tuple[Box, ...], tuple[str, ...]]] = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        path = Path(text) if Path(text).is_absolute() else base / text
        if not path.is_file():
            raise BadInputError(f"{where}, line {number}: no such image file: {text}")
        inside = not Path(text).is_absolute() and ".." not in Path(text).parts
        rows.append((path, _stem(path, base if inside else None), (), ()))
    if not rows:
        raise BadInputError(f"{where}: lists no image paths")
    return rows


def _unique_keys(rows: list[tuple[Path, str]]) -> list[str]:
    count: dict[str, int] = {}
    for _, stem in rows:
        count[stem] = count.get(stem, 0) + 1
    keys: list[str] = []
    taken: set[str] = set()
    following: dict[str, int] = {}  # the next number to try for a base: linear, not n**2
    for path, stem in rows:
        key = stem
        if count[stem] > 1 and path.suffix:
            key = f"{stem}_{file_safe(path.suffix[1:])}"
        base, n = key, following.get(key, 2)
        while key in taken:
            key, n = f"{base}_{n}", n + 1
        following[base] = n
        taken.add(key)
        keys.append(key)
    return keys


def _names(boxes: Iterable[Box]) -> tuple[str, ...]:
    return tuple(sorted({b.name for b in boxes}))


# -- class folders -----------------------------------------------------------------------

def _class_folder(root: Path) -> _Found:
    if not root.is_dir():
        raise BadInputError(f"classes:{root}: not a folder")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise BadInputError(f"classes:{root}: no class sub-folders")
    none: tuple[Box, ...] = ()
    rows: list[tuple[Path, str, tuple[Box, ...], tuple[str, ...]]] = [
        (p, _stem(p, root), none, (name,))
            for name in classes for p in _images_in(root / name, required=False)]
    if not rows:
        raise BadInputError(f"classes:{root}: no images in its class folders")
    return _Found(rows, "classes", classes)


# -- COCO ----------------------------------------------------------------------------------

def _field(obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise BadInputError(f"{where}: missing '{key}'")
    return obj[key]


def _coco(path: Path) -> _Found:
    data = _coco_json(path)
    categories = _list(data.get("categories", []), path, "categories")
    for category in categories:
        _id(_field(category, "id", f"{path}: a category"), f"{path}: category id")
    try:
        categories = sorted(categories, key=lambda c: c["id"])
    except TypeError as exc:
        raise BadInputError(f"{path}: category ids of different types") from exc
    by_id = {c["id"]: i for i, c in enumerate(categories)}
    classes = [str(_field(c, "name", f"{path}: category {c['id']}")) for c in categories]
    files = _coco_images(data, path)
    boxes: dict[Any, list[Box]] = {image_id: [] for image_id in files}
    for ann in _list(data["annotations"], path, "annotations"):
        where = f"{path}: annotation {_annotation_id(ann)}"
        image_id = _id(_field(ann, "image_id", where), f"{where}: image_id")
        if image_id not in boxes:
            raise BadInputError(f"{where}: image_id {_shown(image_id)} is not in 'images'")
        cat = _id(_field(ann, "category_id", where), f"{where}: category_id")
        if cat not in by_id:
            raise BadInputError(f"{where}: category_id {_shown(cat)} is not in 'categories'")
        x1, y1, x2, y2 = _coco_box(_field(ann, "bbox", where), where)
        boxes[image_id].append(Box((x1, y1, x2, y2), by_id[cat], classes[by_id[cat]]))
    folder = _coco_folder(path, next(iter(files.values())))
    rows = []
    for image_id, name in files.items():
        image = folder / name
        if not image.is_file():
            raise BadInputError(f"{path}: image file not found: {image}")
        rows.append((image, _stem(image, folder), tuple(boxes[image_id]),
                     _names(boxes[image_id])))
    return _Found(rows, "coco", classes)


def _coco_json(path: Path) -> dict[str, Any]:
    """The parsed annotation file; one line for JSON that does not parse or is nested too
    deeply for the parser, and for a document without `images` and `annotations`."""
    text = _read_text(path, textfile.MAX_JSON_BYTES)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    except RecursionError:
        raise BadInputError(f"{path}: not valid JSON (nested too deeply)") from None
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise BadInputError(f"{path}: not a COCO annotation file (needs 'images' and "
                            "'annotations')")
    return data


def _coco_images(data: dict[str, Any], path: Path) -> dict[Any, str]:
    """Image id -> file name, in the file's order."""
    files: dict[Any, str] = {}
    for im in _list(data["images"], path, "images"):
        image_id = _id(_field(im, "id", f"{path}: an image"), f"{path}: image id")
        if image_id in files:
            raise BadInputError(f"{path}: image id {_shown(image_id)} is listed twice")
        files[image_id] = str(_field(im, "file_name", f"{path}: image {_shown(image_id)}"))
    if not files:
        raise BadInputError(f"{path}: lists no images")
    return files


def _annotation_id(ann: Any) -> str:
    """An annotation as messages name it: its id, or `?`."""
    return _shown(ann["id"]) if isinstance(ann, dict) and "id" in ann else "?"


def _id(value: Any, what: str) -> int | float | str:
    """A COCO id: a number or a string (a list, an object, null or true is refused)."""
    if isinstance(value, str) or (isinstance(value, int | float) and not isinstance(
            value, bool) and math.isfinite(value)):
        return value
    raise BadInputError(f"{what} {_shown(value)} must be a number or a string")


def _shown(value: Any, limit: int = 40) -> str:
    """A value of an annotation file as a message shows it: short, on one line."""
    text = " ".join(repr(value).split()) if not isinstance(value, int | float) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _coco_box(bbox: Any, where: str) -> tuple[float, float, float, float]:
    """`bbox` [x, y, w, h] as x1 y1 x2 y2; each must be finite."""
    if not (isinstance(bbox, list) and len(bbox) == 4
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in bbox)):
        raise BadInputError(f"{where}: bbox must be [x, y, width, height]")
    x, y, w, h = (float(v) for v in bbox)
    return _finite((x, y, x + w, y + h), f"{where}: bbox {_shown(bbox)}")


def _finite(box: tuple[float, float, float, float], what: str
            ) -> tuple[float, float, float, float]:
    """`box` when its four values are finite numbers; else one line: `what` ..."""
    if not all(math.isfinite(v) for v in box):
        raise BadInputError(f"{what}: the box's values must be finite numbers (no NaN or "
                            "infinity, nothing that overflows)")
    return box


def _list(value: Any, path: Path, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise BadInputError(f"{path}: '{key}' must be a list")
    return value


def _coco_folder(path: Path, first: str) -> Path:
    here = path.parent
    split = path.stem[len("instances_"):] if path.stem.startswith("instances_") else path.stem
    candidates = [here, here / "images", here.parent / "images", here.parent / split,
                  here.parent / "images" / split]
    for folder in candidates:
        if (folder / first).is_file():
            return folder
    looked = ", ".join(str(c) for c in candidates)
    raise BadInputError(f"{path}: cannot find its images (looked for {first} in {looked})")


# -- Pascal VOC ----------------------------------------------------------------------------

def _voc(root: Path) -> _Found:
    files = sorted((root / "Annotations").glob("*.xml"))
    if not files:
        raise BadInputError(f"{root}: a VOC folder without annotations (Annotations/*.xml)")
    parsed = [(f, _voc_file(f)) for f in files]
    classes = sorted({b.name for _, (_, bs) in parsed for b in bs})
    index = {name: i for i, name in enumerate(classes)}
    images = root / "JPEGImages"
    rows = []
    for xml_path, (name, found) in parsed:
        image = images / name
        if not image.is_file():
            raise BadInputError(f"{xml_path}: image file not found: {image}")
        labelled = tuple(replace(b, label=index[b.name]) for b in found)
        rows.append((image, _stem(image, images), labelled, _names(labelled)))
    return _Found(rows, "voc", classes)


def _voc_file(path: Path) -> tuple[str, list[Box]]:
    try:
        tree = ET.fromstring(textfile.read_bytes(path))
    except ET.ParseError as exc:
        raise BadInputError(f"{path}: not a VOC annotation: {exc}") from exc
    name = (tree.findtext("filename") or "").strip()
    if not name:
        raise BadInputError(f"{path}: missing <filename>")
    boxes = []
    for n, obj in enumerate(tree.findall("object"), 1):
        label = (obj.findtext("name") or "").strip()
        bnd = obj.find("bndbox")
        if not label or bnd is None:
            raise BadInputError(f"{path}: object {n} needs <name> and <bndbox>")
        try:
            x1, y1, x2, y2 = (float(bnd.findtext(k) or "") for k in
                              ("xmin", "ymin", "xmax", "ymax"))
        except ValueError as exc:
            raise BadInputError(f"{path}: object {n}: <bndbox> needs numbers xmin ymin xmax "
                                "ymax") from exc
        box = _finite((x1 - 1, y1 - 1, x2, y2), f"{path}: object {n}: <bndbox>")
        boxes.append(Box(box, None, label))
    return name, boxes


# -- YOLO ----------------------------------------------------------------------------------

def _yolo(root: Path) -> _Found:
    names = _yolo_names(root)
    image_root = root / "images"
    rows = []
    seen: set[int] = set()
    for image in _images_in(image_root):
        label_file = root / "labels" / image.relative_to(image_root).with_suffix(".txt")
        lines = _yolo_lines(label_file, names) if _present(label_file) else []
        seen.update(cls for cls, _, _ in lines)
        boxes = _yolo_boxes(image, lines, names)
        rows.append((image, _stem(image, image_root), boxes, _names(boxes)))
    classes = names.names if names is not None else [
        f"class {i}" for i in range(max(seen) + 1 if seen else 0)]
    return _Found(rows, "yolo", classes)


_Line = tuple[int, tuple[float, float, float, float], str]  # class, (cx, cy, w, h), where


def _yolo_lines(label_file: Path, names: _YoloNames | None) -> list[_Line]:
    """The (class, (cx, cy, w, h), where) of each line of a label file, each checked: five
    numbers, a class id the names file names (without one: below `MAX_YOLO_CLASSES`), a
    box of finite values."""
    found = []
    for number, line in enumerate(_read_text(label_file).splitlines(), 1):
        if not line.strip():
            continue
        where = f"{label_file}, line {number}"
        parts = line.split()
        try:
            cls = int(parts[0])
            cx, cy, w, h = (float(v) for v in parts[1:5])
            if len(parts) < 5 or cls < 0:
                raise ValueError
        except (ValueError, IndexError) as exc:
            raise BadInputError(f"{where}: expected 'class cx cy w h'") from exc
        _yolo_class(cls, names, where)
        _finite((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), where)
        found.append((cls, (cx, cy, w, h), where))
    return found


def _yolo_class(cls: int, names: _YoloNames | None, where: str) -> None:
    if names is not None and cls >= len(names.names):
        raise BadInputError(f"{where}: class {cls}, but {names.source} names "
                            f"{len(names.names)} classes (ids 0 to {len(names.names) - 1})")
    if names is None and cls >= MAX_YOLO_CLASSES:
        raise BadInputError(f"{where}: class {cls}; without a names file (classes.txt, "
                            f"obj.names or data.yaml's names:) a YOLO set has at most "
                            f"{MAX_YOLO_CLASSES} classes (ids 0 to {MAX_YOLO_CLASSES - 1}): "
                            "add a names file")


def _yolo_boxes(image: Path, lines: list[_Line], names: _YoloNames | None
                ) -> tuple[Box, ...]:
    """The boxes of one image in its pixels. An image whose size cannot be read gets none:
    it is reported as that image's error when the run reads it."""
    from xaigraph.explain import images

    if not lines:
        return ()
    try:
        width, height = images.size(image)
    except images.ImageError:
        return ()
    boxes = []
    for cls, (cx, cy, w, h), where in lines:
        name = names.names[cls] if names is not None else f"class {cls}"
        box = ((cx - w / 2) * width, (cy - h / 2) * height,
               (cx + w / 2) * width, (cy + h / 2) * height)
        boxes.append(Box(_finite(box, f"{where} (in the pixels of {image.name})"), cls,
                         name))
    return tuple(boxes)


@dataclass(frozen=True)
class _YoloNames:
    """A YOLO set's class names and the file they come from (for messages)."""

    names: list[str]
    source: str


def _yolo_names(root: Path) -> _YoloNames | None:
    """The names file's class names (None without one, or when it names none)."""
    for name in ("classes.txt", "obj.names"):
        if _present(root / name):
            found = [line.strip() for line in _read_text(root / name).splitlines()
                     if line.strip()]
            return _YoloNames(found, name) if found else None
    if _present(root / "data.yaml"):
        return _YoloNames(_yaml_names(root / "data.yaml"), "data.yaml")
    return None


def _yaml_names(path: Path) -> list[str]:
    """`names:` of a YOLO data.yaml: an inline list, a block list or a block of `N: name`
    (a small reader for this one key, so PyYAML is not a dependency)."""
    lines = _read_text(path).splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("names:"):
            continue
        rest = line[len("names:"):].strip()
        if rest.startswith("["):
            inner = rest.strip("[]")
            return [v.strip().strip("'\"") for v in inner.split(",") if v.strip()]
        listed: list[str] = []
        found: dict[int, str] = {}
        for sub in lines[i + 1:]:
            if sub and not sub[0].isspace():
                break
            text = sub.strip()
            if text.startswith("- "):
                listed.append(text[2:].strip().strip("'\""))
            elif ":" in text:
                k, v = text.split(":", 1)
                if k.strip().isdigit():
                    found[int(k)] = v.strip().strip("'\"")
        if found and sorted(found) != list(range(len(found))):
            missing = next(i for i in range(len(found) + 1) if i not in found)
            raise BadInputError(f"{path}: names: has no class {missing} (YOLO class ids run "
                                f"0..N-1; a gap would give the later classes wrong names)")
        if found or listed:
            return [found[k] for k in sorted(found)] or listed
    raise BadInputError(f"{path}: no 'names:' list")
