"""RISE's masks made and applied inside the compiled model (OpenVINO).

RISE spends its time in `N` inferences of masked copies of one input. Made on the host, each
masked input is `C x H x W` floats written by numpy and copied into an infer request, work
that competes with the inferences for the same cores. Here the model's image input is
replaced by a small graph that makes the masks itself (`masks.py`'s formulas):

    inputs:  image [1, C, H, W] (the input explained), grids [B, s, s] float32,
             shift_y [B] and shift_x [B] int32 (one mask per row)
    rows   = Gather(A windows [cell_h, H, s], shift_y)        # [B, H, s]
    cols   = Gather(B windows [cell_w, s, W], shift_x)        # [B, s, W]
    masks  = rows @ grids @ cols                              # [B, H, W]
    input  = baseline + masks[:, None] * (image - baseline)   # into the original graph

so the host sends `s x s + 2` numbers per mask and the engine runs the few extra operations
in its own threads. The rest of the graph, its outputs and their names are the original
model's; the masks are the same as `masks.masks_of` (float32 rounding aside), so a seed gives
the same maps through this path and through `rise.HostRunner`.

The batch `B` is fixed when the model is compiled (the plain model is reshaped to it; a model
that cannot be reshaped keeps its own static batch) and the last batch of a run is padded by
repeating its last mask. Batches go through OpenVINO's asynchronous infer requests.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from xaigraph import signals
from xaigraph.errors import BadInputError
from xaigraph.explain.masks import Draws, draw_batches, windows
from xaigraph.explain.model import pad_rows
from xaigraph.explain.rise import MaskPlan, Runner
from xaigraph.session import OutputKey, Session

__all__ = ["MASK_BATCH", "MaskedModel"]

MASK_BATCH = 4  # masks per inference request (see `tools/bench_blackbox.py`)


class MaskedModel:
    """An OpenVINO model whose input is made from mask draws; `runner(x)` is a `rise.Runner`.

    `model`: the plain `ov.Model` (one image input, float); `layout`: "NCHW" or "NHWC";
    `baseline`: the model input of a black image; `output`: the output whose values
    `post` turns into what the sampler weighs (class probabilities `[B, K]`)."""

    def __init__(self, model: Any, *, layout: str, baseline: np.ndarray, output: OutputKey,
                 post: Callable[[np.ndarray], np.ndarray], batch: int = MASK_BATCH,
                 config: dict[str, str] | None = None, precision: str | None = "f32") -> None:
        self.model = model
        self.layout = layout
        self.baseline = np.asarray(baseline, np.float32)
        self.output = output
        self.post = post
        self.batch = batch
        self.config = dict(config or {"PERFORMANCE_HINT": "THROUGHPUT"})
        self.precision = precision
        self.sessions: dict[tuple[int, int, int], tuple[Session, int]] = {}

    @staticmethod
    def supports(model: Any) -> str | None:
        """Why `model` cannot take in-graph masks (None: it can)."""
        params = model.get_parameters()
        if len(params) != 1:
            return f"it has {len(params)} inputs"
        kind = params[0].get_element_type().get_type_name()
        if kind not in ("f32", "f16"):
            return f"its input is {kind}, not float"
        if params[0].get_partial_shape().rank.is_dynamic:
            return "its input rank is dynamic"
        return None

    def session(self, cells: int, size: tuple[int, int]) -> tuple[Session, int]:
        """The compiled masked model for grids of `cells` and inputs of `size`, and its
        batch (compiled once per grid and size)."""
        key = (cells, *size)
        if key not in self.sessions:
            built, batch = self._build(cells, size)
            session = Session.open(built, "openvino", precision=self.precision,
                                   config=self.config)
            self.sessions[key] = session, batch
        return self.sessions[key]

    def runner(self, x: np.ndarray) -> Runner:
        """The `rise.Runner` of input `x` `[1, C, H, W]` (in the model's layout)."""
        size = (int(x.shape[1]), int(x.shape[2])) if self.layout == "NHWC" else (
            int(x.shape[2]), int(x.shape[3]))
        image = np.ascontiguousarray(x, np.float32)

        def run(plan: MaskPlan) -> Iterator[tuple[Draws, Any]]:
            session, batch = self.session(plan.cells, size)
            sent: deque[Draws] = deque()

            def feeds() -> Iterator[list[np.ndarray]]:
                for d in draw_batches(plan.seed, plan.num_masks, batch, plan.cells,
                                      plan.prob, size):
                    sent.append(d)
                    yield [*_padded(d, batch), image]

            for outs in session.stream(feeds(), [self.output]):
                d = sent.popleft()
                yield d, self.post(outs[0][:d.length])
        return run

    def _build(self, cells: int, size: tuple[int, int]) -> tuple[Any, int]:
        import openvino as ov
        from openvino import opset13 as ops

        model = self.model.clone()
        param = model.get_parameters()[0]
        dims = list(param.get_partial_shape())
        batch = self.batch
        try:
            model.reshape({param.output(0): ov.PartialShape([batch, *dims[1:]])})
        except Exception:
            signals.check()  # an interrupted run ends here, never goes on another way
            if not dims[0].is_static:
                raise BadInputError("OpenVINO cannot give the model a fixed batch for "
                                    "in-graph masks") from None
            batch = dims[0].get_length()
            model = self.model.clone()
            param = model.get_parameters()[0]
        shape = [batch, *(d.get_length() for d in param.get_partial_shape()[1:])]
        rows, cols = windows(cells, size)
        grids = ops.parameter([batch, cells, cells], np.float32, name="xaigraph_mask_grids")
        shift_y = ops.parameter([batch], np.int32, name="xaigraph_mask_shift_y")
        shift_x = ops.parameter([batch], np.int32, name="xaigraph_mask_shift_x")
        image = ops.parameter([1, *shape[1:]], np.float32, name="xaigraph_mask_image")
        axis = ops.constant(np.int64(0))
        masks = ops.matmul(ops.matmul(ops.gather(ops.constant(rows), shift_y, axis), grids,
                                      False, False),
                           ops.gather(ops.constant(cols), shift_x, axis), False, False)
        channel = 3 if self.layout == "NHWC" else 1
        base = ops.constant(self.baseline.reshape([1, *shape[1:]]))
        kept = ops.multiply(ops.unsqueeze(masks, ops.constant(np.int64(channel))),
                            ops.subtract(image, base))
        masked: Any = ops.add(base, kept)
        if param.get_element_type() != ov.Type.f32:
            masked = ops.convert(masked, param.get_element_type())
        for target in list(param.output(0).get_target_inputs()):
            target.replace_source_output(masked.output(0))
        built = ov.Model(model.get_results(), model.get_sinks(),
                         [grids, shift_y, shift_x, image], "xaigraph_masked")
        return built, batch


def _padded(d: Draws, batch: int) -> list[np.ndarray]:
    """The draws as the masked model's feeds, padded to `batch` rows."""
    return [pad_rows(a, batch) for a in (d.grids, d.dy.astype(np.int32), d.dx.astype(np.int32))]
