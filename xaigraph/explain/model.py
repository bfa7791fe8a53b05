"""The model as a function: one compiled `Session` over any number of model inputs.

    fn = ModelFn(session)                          # the static batch read from the session
    logits, maps = fn(x, [0, "saliency_map"])      # [len(x), ...] each, whatever len(x)
    for outs in fn.stream(batches, outputs): ...   # asynchronous requests, results in order
    p = probabilities(logits, "softmax", False)    # class probabilities [B, K]

A model with a static batch gets exactly that many rows per inference (the last chunk padded
by repeating its last row, the padding cut from the results); a dynamic one gets `chunk`
rows at a time (0: all at once). Chunks run through the session's asynchronous requests
(OpenVINO's `AsyncInferQueue`; ONNX Runtime's thread pool). The explainer, the black-box
adapters (`blackbox.class_predict`, `det_predict`) and RISE's masked model use this; it
imports nothing of the runtime layer but the session.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from xaigraph.errors import BadInputError
from xaigraph.session import OutputKey, Session

__all__ = ["ModelFn", "pad_rows", "probabilities"]


def pad_rows(a: np.ndarray, size: int) -> np.ndarray:
    """`a` with its last row repeated up to `size` rows (as it is when it has them)."""
    if len(a) >= size:
        return a
    return np.concatenate([a, np.repeat(a[-1:], size - len(a), axis=0)])


def probabilities(logits: np.ndarray, activation: str | None, detector: bool) -> np.ndarray:
    """Class probabilities `[B, K]` from the class output: softmax of logits unless the
    output ends in a Softmax or Sigmoid (LogSoftmax: exp). A detector's `[B, M, K]`: each
    class's best probability over the M anchors."""
    x = np.asarray(logits, dtype=np.float64)
    if activation in ("softmax", "sigmoid"):
        p = x
    elif activation == "log_softmax":
        p = np.exp(x)
    else:
        z = np.exp(x - x.max(axis=-1, keepdims=True))
        p = z / z.sum(axis=-1, keepdims=True)
    if detector and p.ndim == 3:
        p = p.max(axis=1)
    return p.reshape(p.shape[0], -1).astype(np.float32)


class ModelFn:
    """`session` as a function over batches of inputs (see the module's docstring)."""

    def __init__(self, session: Session, *, chunk: int = 0, requests: int | None = None,
                 what: str = "this runs") -> None:
        if len(session.inputs) != 1:
            raise BadInputError(f"{what} models with one input; this one has "
                                f"{len(session.inputs)} ({', '.join(session.input_names)})")
        dims = session.inputs[0].dims
        self.session = session
        self.static_batch: int | None = dims[0] if dims and dims[0] else None
        self.chunk = chunk
        self.requests = requests

    def _size(self, rows: int) -> int:
        return self.static_batch or self.chunk or max(rows, 1)

    def chunks(self, x: np.ndarray, outputs: Sequence[OutputKey] | None
               ) -> list[list[np.ndarray]]:
        """The outputs of each chunk of `x`, in order, the padding of a static batch cut
        from the outputs that have a row per input."""
        size = self._size(len(x))
        parts = [x[s:s + size] for s in range(0, len(x), size)]
        feeds = [[pad_rows(p, size)] if self.static_batch else [p] for p in parts]
        results = self.session.run_many(feeds, outputs, requests=self.requests)
        if self.static_batch and len(parts[-1]) < size:
            last = len(parts[-1])
            results[-1] = [a[:last] if a.ndim and a.shape[0] == size else a
                           for a in results[-1]]
        return results

    def __call__(self, x: np.ndarray, outputs: Sequence[OutputKey]) -> list[np.ndarray]:
        """The `outputs` of inputs `x`, `[len(x), ...]` each."""
        if self.static_batch is None and self._size(len(x)) >= len(x):
            return self.session.run([x], outputs)
        results = self.chunks(x, outputs)
        return [np.concatenate([r[i] for r in results]) for i in range(len(outputs))]

    def stream(self, batches: Iterable[np.ndarray | None], outputs: Sequence[OutputKey]
               ) -> Iterator[list[np.ndarray]]:
        """Each batch's outputs as soon as it and those before it are done (a dynamic batch
        model: one inference per batch, with the session's asynchronous requests); a `None`
        batch is a tick that hands back what is done (`Session.stream`)."""
        return self.session.stream((None if b is None else [b] for b in batches), outputs,
                                   self.requests)
