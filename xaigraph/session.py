"""One runtime session: compile a model once, run it on batches.

    session = Session.open(model)                   # ov.Model, onnx.ModelProto or a file
    logits, = session.run([x], outputs=[0])         # outputs by position or by name
    maps = session.run_many(batches, outputs=["saliency_map"], requests=4)

Engines: ``"openvino"`` (OpenVINO CPU; an `ov.Model`, an IR file, or an ONNX model read by
OpenVINO's reader) and ``"onnxruntime"`` (ONNX Runtime CPU; an ONNX model). The engine is
chosen by the model unless named: an `ov.Model` or `.xml` runs on OpenVINO, an ONNX model on
ONNX Runtime. The defaults are validation's: OpenVINO with f32 inference precision, ONNX
Runtime without graph optimisations; `precision`, `optimize` and `config` change them.

Validation, the insert pass's self-check, the demo and the tools run models through this
module only. Expected failures (the engine cannot load the model, an input of the wrong
shape or type, an inference that fails) are `BadInputError`s with a one-line message.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xaigraph.errors import BadInputError
from xaigraph.model_io import core, load_model, ov_from_onnx, ov_message
from xaigraph.signals import deferred

__all__ = ["ENGINES", "Inputs", "OutputKey", "Session", "TensorInfo"]

ENGINES = ("openvino", "onnxruntime")
ENGINE_NAMES = {"openvino": "OpenVINO", "onnxruntime": "ONNX Runtime"}

Inputs = Sequence[np.ndarray] | Mapping[str, np.ndarray]  # in input order, or by name
OutputKey = str | int  # an output's name (any of its names) or position

_ORT_DTYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(int8)": np.int8, "tensor(int16)": np.int16, "tensor(int32)": np.int32,
    "tensor(int64)": np.int64, "tensor(uint8)": np.uint8, "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32, "tensor(uint64)": np.uint64, "tensor(bool)": np.bool_,
}


@dataclass(frozen=True)
class TensorInfo:
    """A compiled model's input or output."""

    name: str
    names: tuple[str, ...]  # every name of the tensor (OpenVINO tensors may have several)
    dtype: np.dtype[Any] | None  # None for an element type numpy does not have
    dims: tuple[int | None, ...] | None  # None entries are dynamic; None when rank is unknown

    @property
    def shape_text(self) -> str:
        if self.dims is None:
            return "[...]"
        return "[" + ",".join("?" if d is None else str(d) for d in self.dims) + "]"


def _one_line(exc: BaseException) -> str:
    """An engine's exception on one line, without OpenVINO's 'Check ... failed at file:line'."""
    return re.sub(r"Check '.*?' failed at \S+:\d+:\s*", "", ov_message(exc)) or type(exc).__name__


class _OpenVINO:
    """A compiled `ov.Model` and one infer request for synchronous runs."""

    def __init__(self, model: Any, precision: str | None, config: Mapping[str, str],
                 device: str) -> None:
        properties = dict(config)
        if precision is not None:
            properties.setdefault("INFERENCE_PRECISION_HINT", precision)
        if device == "CPU" and _many_streams(properties) and compressed_weights(model):
            properties["NUM_STREAMS"] = "1"
        try:
            self.compiled = core().compile_model(model, device, properties)
        except Exception as exc:
            raise BadInputError(f"OpenVINO cannot compile the model: {_one_line(exc)}") from exc
        self.request = self.compiled.create_infer_request()
        self.queues: dict[int, Any] = {}
        self.inputs = [self._info(i, p) for i, p in enumerate(self.compiled.inputs)]
        self.outputs = [self._info(i, p) for i, p in enumerate(self.compiled.outputs)]

    @staticmethod
    def _info(i: int, port: Any) -> TensorInfo:
        names = tuple(sorted(port.get_names()))
        ps = port.get_partial_shape()
        dims = None if ps.rank.is_dynamic else tuple(
            d.get_length() if d.is_static else None for d in ps)
        try:
            dtype: np.dtype[Any] | None = np.dtype(port.get_element_type().to_dtype())
        except Exception:  # an element type without a numpy counterpart
            dtype = None
        name = port.get_any_name() if names else f"#{i}"
        return TensorInfo(name, names, dtype, dims)

    def run(self, feeds: list[np.ndarray], picks: list[int]) -> list[np.ndarray]:
        result = self.request.infer(feeds)
        return [np.asarray(result[i]) for i in picks]

    def stream(self, batches: Iterable[list[np.ndarray] | None], picks: list[int],
               requests: int) -> Iterator[list[np.ndarray]]:
        import openvino as ov

        if requests not in self.queues:  # 0: OpenVINO's optimal number of requests
            self.queues[requests] = ov.AsyncInferQueue(self.compiled, requests)
        queue = self.queues[requests]
        queue.wait_all()  # requests of a stream left unfinished would report here
        done: dict[int, list[np.ndarray]] = {}

        def finished(request: Any, index: int) -> None:
            done[index] = [request.get_output_tensor(i).data.copy() for i in picks]

        queue.set_callback(finished)
        ready = index = 0
        try:
            for feeds in batches:
                if feeds is not None:  # None: a tick, to hand back what is done
                    queue.start_async(feeds, userdata=index)
                    index += 1
                while ready in done:
                    yield done.pop(ready)
                    ready += 1
            queue.wait_all()
        except BaseException:  # a failed request, bad input, or the caller stopped early
            with contextlib.suppress(Exception):
                queue.wait_all()  # would raise the failure again
            del self.queues[requests]  # a queue keeps a failed request's error: a new one
            raise
        while ready in done:
            yield done.pop(ready)
            ready += 1


class _OnnxRuntime:
    """An ONNX Runtime CPU session; batches in parallel on a small thread pool."""

    def __init__(self, model: Any, optimize: bool, config: Mapping[str, str]) -> None:
        with deferred():  # a signal inside its native initialisation broke every later
            import onnxruntime as ort  # import ("type ... is already registered"): after it

        options = ort.SessionOptions()
        if not optimize:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.log_severity_level = 3
        for key, value in config.items():
            options.add_session_config_entry(key, value)
        source = str(model) if isinstance(model, Path) else model.SerializeToString()
        try:
            self.session = ort.InferenceSession(source, options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise BadInputError(f"ONNX Runtime cannot run the model: {_one_line(exc)}") from exc
        self.inputs = [self._info(a) for a in self.session.get_inputs()]
        self.outputs = [self._info(a) for a in self.session.get_outputs()]

    @staticmethod
    def _info(arg: Any) -> TensorInfo:
        dtype = _ORT_DTYPES.get(arg.type)
        dims = None if arg.shape is None else tuple(
            d if isinstance(d, int) else None for d in arg.shape)
        return TensorInfo(arg.name, (arg.name,), None if dtype is None else np.dtype(dtype), dims)

    def run(self, feeds: list[np.ndarray], picks: list[int]) -> list[np.ndarray]:
        names = [self.outputs[i].name for i in picks]
        named = {t.name: a for t, a in zip(self.inputs, feeds, strict=True)}
        return [np.asarray(a) for a in self.session.run(names, named)]

    def stream(self, batches: Iterable[list[np.ndarray] | None], picks: list[int],
               requests: int) -> Iterator[list[np.ndarray]]:
        if requests <= 1:  # sequential: ONNX Runtime already uses every core for one run
            for feeds in batches:
                if feeds is not None:
                    yield self.run(feeds, picks)
            return
        pending: deque[Future[list[np.ndarray]]] = deque()
        with ThreadPoolExecutor(max_workers=requests) as pool:
            for feeds in batches:
                if feeds is None:  # a tick: hand back what is done
                    while pending and pending[0].done():
                        yield pending.popleft().result()
                    continue
                pending.append(pool.submit(self.run, feeds, picks))
                if len(pending) >= 2 * requests:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()


class Session:
    """A model compiled once for one engine (see the module's docstring).

    `inputs` and `outputs` describe the compiled model. `run` is synchronous and not
    thread-safe (one infer request); `run_many` / `stream` run batches concurrently
    (OpenVINO: an `AsyncInferQueue` of `requests` infer requests, 0 for OpenVINO's optimal
    number; ONNX Runtime: sequential for `requests` <= 1, else a pool of `requests` threads)
    and return the results in the order of the batches.
    """

    def __init__(self, engine: str, impl: _OpenVINO | _OnnxRuntime) -> None:
        self.engine = engine
        self._impl = impl
        self.inputs: list[TensorInfo] = impl.inputs
        self.outputs: list[TensorInfo] = impl.outputs

    @classmethod
    def open(
        cls,
        model: Any,
        engine: str | None = None,
        *,
        precision: str | None = "f32",
        optimize: bool = False,
        config: Mapping[str, str] | None = None,
        device: str = "CPU",
    ) -> Session:
        """Compile `model` (an `ov.Model`, an `onnx.ModelProto`, or an `.xml` / `.onnx` path).

        `engine`: "openvino" or "onnxruntime"; by default the model's own (ONNX Runtime for
        ONNX). `precision`: OpenVINO's inference precision hint (None: the device's default).
        `optimize`: ONNX Runtime's graph optimisations (all levels when True). `config`:
        further OpenVINO compile properties, or ONNX Runtime session config entries.
        `device`: the OpenVINO device.
        """
        engine, native = _resolve(model, engine)
        settings = dict(config or {})
        if engine == "openvino":
            return cls(engine, _OpenVINO(native, precision, settings, device))
        return cls(engine, _OnnxRuntime(native, optimize, settings))

    @property
    def precision(self) -> str:
        """The inference precision the engine runs ("f32", "bf16", "f16"; ONNX Runtime: f32)."""
        if isinstance(self._impl, _OpenVINO):
            kind = self._impl.compiled.get_property("INFERENCE_PRECISION_HINT")
            return str(kind.get_type_name())
        return "f32"

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def run(self, inputs: Inputs, outputs: Sequence[OutputKey] | None = None
            ) -> list[np.ndarray]:
        """One inference: the chosen `outputs` (by name or position; all, in order, by
        default), as numpy arrays in the order asked."""
        picks = self._picks(outputs)
        feeds = self._feeds(inputs)
        try:
            return self._impl.run(feeds, picks)
        except Exception as exc:
            raise self._failed(feeds, exc) from exc

    def run_many(self, batches: Iterable[Inputs], outputs: Sequence[OutputKey] | None = None,
                 requests: int | None = None) -> list[list[np.ndarray]]:
        """`run` on every batch, `requests` at a time; results in the order of `batches`."""
        return list(self.stream(batches, outputs, requests))

    def stream(self, batches: Iterable[Inputs | None],
               outputs: Sequence[OutputKey] | None = None,
               requests: int | None = None) -> Iterator[list[np.ndarray]]:
        """Like `run_many`, yielding each batch's outputs as soon as it and every batch
        before it are done (for data sets that do not fit in memory). A `None` among the
        batches is a tick: nothing runs, and the outputs done by then are yielded (a caller
        that waits for its next batch keeps getting what is finished)."""
        picks = self._picks(outputs)  # checked now, not at the first result
        count = requests if requests is not None else (0 if self.engine == "openvino" else 1)
        return self._stream((None if b is None else self._feeds(b) for b in batches), picks,
                            count)

    def _stream(self, feeds: Iterator[list[np.ndarray] | None], picks: list[int], count: int
                ) -> Iterator[list[np.ndarray]]:
        try:
            yield from self._impl.stream(feeds, picks, count)
        except BadInputError:
            raise
        except Exception as exc:
            name = ENGINE_NAMES[self.engine]
            raise BadInputError(f"{name} failed to run the model: {_one_line(exc)}") from exc

    def _picks(self, outputs: Sequence[OutputKey] | None) -> list[int]:
        if outputs is None:
            return list(range(len(self.outputs)))
        picks = []
        for key in outputs:
            if isinstance(key, int):
                if not -len(self.outputs) <= key < len(self.outputs):
                    raise BadInputError(f"the model has {len(self.outputs)} outputs, no "
                                        f"output #{key}")
                picks.append(key % len(self.outputs))
                continue
            found = [i for i, t in enumerate(self.outputs) if key in t.names]
            if not found:
                raise BadInputError(f"the model has no output named '{key}'; its outputs: "
                                    f"{', '.join(self.output_names)}")
            picks.append(found[0])
        return picks

    def _feeds(self, inputs: Inputs) -> list[np.ndarray]:
        """The inputs in the model's order, checked against the declared types and shapes."""
        if isinstance(inputs, Mapping):
            missing = [n for n in self.input_names if n not in inputs]
            extra = [n for n in inputs if n not in self.input_names]
            if missing or extra:
                raise BadInputError(
                    f"the model takes inputs {', '.join(self.input_names)}; got "
                    f"{', '.join(map(str, inputs)) or 'none'}")
            arrays = [np.asarray(inputs[n]) for n in self.input_names]
        else:
            arrays = [np.asarray(a) for a in inputs]
            if len(arrays) != len(self.inputs):
                raise BadInputError(f"the model takes {len(self.inputs)} input(s) "
                                    f"({', '.join(self.input_names)}), got {len(arrays)}")
        for info, array in zip(self.inputs, arrays, strict=True):
            _check(info, array)
        return arrays

    def _failed(self, feeds: list[np.ndarray], exc: Exception) -> BadInputError:
        shapes = ", ".join(str(list(a.shape)) for a in feeds)
        return BadInputError(f"{ENGINE_NAMES[self.engine]} failed to run the model on inputs "
                             f"of shape {shapes}: {_one_line(exc)}")


def _check(info: TensorInfo, array: np.ndarray) -> None:
    if info.dtype is not None and array.dtype != info.dtype:
        raise BadInputError(f"input '{info.name}' takes {info.dtype}, got {array.dtype}")
    dims = info.dims
    if dims is not None and (len(dims) != array.ndim or any(
            d is not None and d != s for d, s in zip(dims, array.shape, strict=True))):
        raise BadInputError(f"input '{info.name}' takes shape {info.shape_text}, got "
                            f"{list(array.shape)}")


# Integer weight codes that OpenVINO decompresses in the graph (Constant -> Convert -> float).
_CODES = frozenset({"u8", "i8", "u4", "i4", "u2", "nf4", "f4e2m1"})


def compressed_weights(model: Any) -> bool:
    """Whether `model` (an `ov.Model`) holds integer weight codes decompressed in the graph
    (NNCF's weight compression: u8 / i8 / 4-bit Constant -> Convert -> Subtract, Multiply).

    OpenVINO 2026.4's CPU plugin computes such a model wrongly with more than one stream:
    the bundled EfficientNet-Lite0 with u8 weights scores "plunger" for the cat under
    PERFORMANCE_HINT THROUGHPUT (two streams here; max |logit error| 14.6) and "tiger cat"
    with one stream (0.23), so `Session.open` compiles it with one stream."""
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Convert":
            continue
        source = op.input_value(0).get_node()
        if source.get_type_name() == "Constant" and \
                source.get_element_type().get_type_name() in _CODES:
            return True
    return False


def _many_streams(properties: Mapping[str, Any]) -> bool:
    """Whether `properties` may give the CPU plugin more than one stream."""
    streams = properties.get("NUM_STREAMS")
    if streams is not None:
        return str(streams) not in ("1",)
    return str(properties.get("PERFORMANCE_HINT", "")).upper() in ("THROUGHPUT",
                                                                   "CUMULATIVE_THROUGHPUT")


def _resolve(model: Any, engine: str | None) -> tuple[str, Any]:
    """(engine, what it compiles) for `model` and the engine asked for."""
    if engine is not None and engine not in ENGINES:
        raise BadInputError(f"unknown engine '{engine}'; use one of {', '.join(ENGINES)}")
    if isinstance(model, str | os.PathLike):
        return _resolve_path(Path(model), engine)
    import onnx

    if isinstance(model, onnx.ModelProto):
        if engine == "openvino":
            return engine, ov_from_onnx(model)
        return "onnxruntime", model
    if engine == "onnxruntime":
        raise BadInputError("ONNX Runtime runs ONNX models only; this is an OpenVINO model "
                            "(use the openvino engine)")
    return "openvino", model


def _resolve_path(path: Path, engine: str | None) -> tuple[str, Any]:
    onnx_file = path.suffix.lower() == ".onnx"
    if engine == "onnxruntime" and not onnx_file:
        raise BadInputError(f"ONNX Runtime runs ONNX models only, not {path.name}")
    if onnx_file and engine != "openvino":
        loaded = load_model(path, backend="onnx")  # checks the file; ORT reads its data
        return "onnxruntime", path if loaded.external_data else loaded.model
    return "openvino", load_model(path, backend="ir").model
