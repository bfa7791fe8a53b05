"""Record the bundled model's preprocessing and labels in its own metadata (one-off).

    python tools/write_demo_model_info.py            # rewrites the bundled ONNX file
    python tools/write_demo_model_info.py --check    # exit 1 if the file does not carry them

Writes `xaigraph.demo.EFFICIENTNET_LITE` (centre crop 224/256 of the short side, bicubic,
`(rgb - 127) / 128`) and the 1000 ImageNet labels (`xaigraph/data/imagenet_labels.txt`), and
`model_type` `Classification`, with `xaigraph.model_info.write` (ONNX `metadata_props`
`model_info.*`), so that `model_info.read` of the file gives them back and `xaigraph explain`
on it needs no flags. The graph and its weights are untouched (checked: the same bytes once
the metadata is set aside). `tools/export_demo_model.py` writes the same metadata when it
rebuilds the file. No torch needed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import onnx

from xaigraph import model_info
from xaigraph.demo import EFFICIENTNET_LITE, MODEL_FILE
from xaigraph.files import atomic_write
from xaigraph.labels import imagenet_labels

DATA_DIR = Path(__file__).resolve().parent.parent / "xaigraph" / "data"
TASK = "Classification"


def with_model_info(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` (changed in place) carrying the demo's preprocessing, labels and task."""
    return model_info.write(model, EFFICIENTNET_LITE, imagenet_labels(), task=TASK)


def carries_it(model: onnx.ModelProto) -> bool:
    info = model_info.read(model)
    return (info.preprocess == EFFICIENTNET_LITE and info.labels == imagenet_labels()
            and info.task == TASK)


def _without_metadata(model: onnx.ModelProto) -> bytes:
    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    del bare.metadata_props[:]
    return bare.SerializeToString()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify only, write nothing")
    parser.add_argument("--file", type=Path, default=DATA_DIR / MODEL_FILE)
    args = parser.parse_args(argv)
    model = onnx.load(str(args.file))
    if args.check:
        ok = carries_it(model)
        print(f"{args.file}: {'carries' if ok else 'does not carry'} its preprocessing and labels")
        return 0 if ok else 1
    before = _without_metadata(model)
    with_model_info(model)
    if _without_metadata(model) != before or not carries_it(model):
        print("FAIL: writing the metadata changed something else", file=sys.stderr)
        return 1
    data = model.SerializeToString()
    atomic_write(args.file, lambda p: p.write_bytes(data))
    print(f"wrote {args.file} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
