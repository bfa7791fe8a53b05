"""`OpBuilder` for OpenVINO: builds ops of the standard opsets into an `ov.Model`."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import openvino as ov
import openvino.opset13 as ops
from openvino.utils.node_factory import NodeFactory

from xaigraph.errors import MethodError
from xaigraph.graph_view import GraphView, Value
from xaigraph.ops import BuilderBase, T, broadcast_fixed, relax_shape

__all__ = ["OVBuilder", "undo_record"]

_OV = {"f32": ov.Type.f32, "f16": ov.Type.f16, "i64": ov.Type.i64, "i32": ov.Type.i32,
       "u8": ov.Type.u8}


def _out(node: Any) -> ov.Output:
    return node if isinstance(node, ov.Output) else node.output(0)


class OVBuilder(BuilderBase):
    """Builds into `model`; `view` must describe the same model."""

    def __init__(self, model: ov.Model, view: GraphView | None, prefix: str = "xai") -> None:
        super().__init__(view)
        self.model = model
        self.prefix = prefix
        self._count = 0
        self._factories: dict[str, NodeFactory] = {}
        self._shapes: dict[tuple[int, int], ov.Output] = {}

    def _name(self, node: Any, hint: str) -> ov.Output:
        self._count += 1
        out = _out(node)
        out.get_node().set_friendly_name(f"{self.prefix}/{hint}_{self._count}")
        return out

    # -- existing tensors and outputs -----------------------------------------------------
    def value(self, v: Value) -> T:
        return self._view.native[v.op].output(v.port)

    def copy(self, op_ids: Sequence[str], inputs: dict[Value, T], outputs: Sequence[Value],
             attention_bias: T | None = None, keep_rows: dict[str, int] | None = None
             ) -> list[T]:
        mapped: dict[Value, ov.Output] = dict(inputs)
        for op_id in op_ids:
            info = self._view.ops[op_id]
            node = self._view.native[op_id]
            if info.kind == "const":
                continue
            args = [mapped.get(v, self.value(v)) for v in info.inputs]
            attrs = node.get_attributes()
            if info.type == "Reshape":
                args[1], attrs = self._relaxed_reshape(info.inputs, args[1], attrs)
            elif info.neutral == "concat":
                args = broadcast_fixed(self, self._view, op_id, args,
                                       [v in mapped for v in info.inputs], int(attrs["axis"]))
            if keep_rows and op_id in keep_rows:
                args = [self.slice(a, 0, keep_rows[op_id], axis=1) for a in args]
            attention = info.attrs.get("attention")
            if attention_bias is not None and attention == "softmax":
                args[0] = ops.add(args[0], attention_bias).output(0)
            elif attention_bias is not None and attention == "sdpa":
                if len(args) == 3:
                    args.append(attention_bias)
                else:  # a mask (and maybe a scale) already: only a token-free one can stay
                    mask = self._view.tensor(info.inputs[3]).probe
                    if mask is None or any(d != 1 for d in mask):
                        raise MethodError(f"{info.name}: attention with a per-token mask")
                    args[3] = ops.add(args[3], attention_bias).output(0)
            version = node.get_type_info().version_id
            try:
                factory = self._factories.setdefault(version, NodeFactory(version))
                new = factory.create(info.type, [_out(a) for a in args], attrs)
            except Exception as exc:
                raise MethodError(
                    f"cannot copy head op {info.name} ({info.type}, {version}): "
                    f"{str(exc).splitlines()[-1] if str(exc) else type(exc).__name__}"
                ) from exc
            new.set_friendly_name(f"{self.prefix}/{info.name}")
            for port in range(len(info.outputs)):
                mapped[Value(op_id, port)] = new.output(port)
        missing = [self._view.describe(v) for v in outputs if v not in mapped]
        if missing:
            raise MethodError(f"head copy does not reach {', '.join(missing)}")
        return [mapped[v] for v in outputs]

    def _relaxed_reshape(
        self, src: list[Value], shape_arg: ov.Output, attrs: dict[str, Any]
    ) -> tuple[ov.Output, dict[str, Any]]:
        shape = self._view.const_value(src[1])
        data = self._view.tensor(src[0]).probe
        if shape is None or data is None:
            return shape_arg, attrs
        relaxed = relax_shape(shape, data, bool(attrs.get("special_zero", False)))
        if relaxed is None:
            return shape_arg, attrs
        return _out(ops.constant(relaxed.astype(shape.dtype))), {**attrs, "special_zero": True}

    def add_output(self, x: T, name: str, shape: Sequence[int | None]) -> None:
        x = self._pinned(x, shape)
        x.get_tensor().set_names({name})
        result = ops.result(x)
        result.set_friendly_name(name)
        self.model.add_results([result])

    def _pinned(self, x: T, shape: Sequence[int | None]) -> T:
        """`x`, or a reshape of it that declares the dims of `shape` that are known where
        OpenVINO's shape inference lost them (e.g. K after a per-image gather)."""
        have = x.get_partial_shape()
        if have.rank.is_dynamic or have.rank.get_length() != len(shape):
            return x
        if all(d is None or have[i].is_static for i, d in enumerate(shape)):
            return x
        pattern = np.asarray([0 if d is None else d for d in shape], dtype=np.int64)
        return self.reshape(x, self.const(pattern))  # 0: the dim as it is (special_zero)

    def _result(self, name: str) -> Any:
        for r in self.model.get_results():
            if name in r.input_value(0).get_names() or r.get_friendly_name() == name:
                return r
        raise KeyError(name)

    def remove_output(self, name: str) -> None:
        self.model.remove_result(self._result(name))

    def rename_output(self, old: str, new: str) -> None:
        result = self._result(old)
        result.input_value(0).get_tensor().set_names({new})
        result.set_friendly_name(new)

    def output_value(self, name: str) -> T:
        return self._result(name).input_value(0)

    def replace_value(self, v: Value, x: T) -> None:
        old = self.value(v)
        names = old.get_names()
        for target in list(old.get_target_inputs()):
            target.replace_source_output(x)
        if names:
            old.get_tensor().set_names(set())
            x.get_tensor().set_names(names)

    def insert_after(self, v: Value, build: Callable[[T], T]) -> T:
        old = self.value(v)
        readers = list(old.get_target_inputs())
        x = build(old)
        for reader in readers:
            reader.replace_source_output(x)
        return x

    def name(self, x: T) -> str:
        return str(x.get_node().get_friendly_name())

    def finish(self) -> None:
        """Nothing to tidy: OpenVINO drops unreachable nodes itself."""

    def output_at(self, index: int) -> T:
        return self.model.get_results()[index].input_value(0)

    def restore(self, record: dict[str, Any]) -> None:
        """Put back what `undo_record` says an insertion removed or rewired: re-create the
        removed ops, reconnect every op listed to its original inputs, and give the tensors
        their original names (taken off the tensors of ours that held them)."""
        ops_by_name = {n.get_friendly_name(): n for n in self.model.get_ordered_ops()}
        tensors = _tensors(self.model)
        for entry in record.get("ops", []):
            args = [ops_by_name[src].output(port) for src, port in entry["inputs"]]
            if "type" in entry:
                node = self._recreate(entry, args)
                node.set_friendly_name(entry["op"])
                ops_by_name[entry["op"]] = node
            else:
                node = ops_by_name[entry["op"]]
                for i, arg in enumerate(args):
                    node.input(i).replace_source_output(arg)
            for port, names in enumerate(entry["names"]):
                for holder in {id(t): t for n, t in tensors.items() if n in names}.values():
                    holder.get_tensor().set_names(holder.get_names() - set(names))
                node.output(port).get_tensor().set_names(set(names))
                tensors.update({name: node.output(port) for name in names})

    def _recreate(self, entry: dict[str, Any], args: list[ov.Output]) -> Any:
        if "const" in entry:
            c = entry["const"]
            data = np.frombuffer(base64.b64decode(c["data"]), dtype=np.dtype(c["dtype"]))
            return ops.constant(data.reshape(c["shape"]))
        factory = self._factories.setdefault(entry["version"], NodeFactory(entry["version"]))
        return factory.create(entry["type"], args, entry["attrs"])

    def replace_output(self, name: str, x: T, shape: Sequence[int | None] | None = None
                       ) -> None:
        result = self._result(name)
        old = result.input_value(0)
        old.get_tensor().set_names(set())
        result.input(0).replace_source_output(x)
        x.get_tensor().set_names({name})
        result.validate_and_infer_types()

    # -- constants and shapes ---------------------------------------------------------------
    def const(self, array: np.ndarray) -> T:
        return self._name(ops.constant(np.asarray(array)), "const")

    def shape_of(self, x: T) -> T:
        return self._name(ops.shape_of(x, output_type="i64"), "shape")

    def dims(self, x: T, indices: Sequence[int]) -> T:
        key = (x.get_node().get_instance_id(), x.get_index())
        if key not in self._shapes:  # one ShapeOf per tensor
            self._shapes[key] = self.shape_of(x)
        shape = self._shapes[key]
        idx = ops.constant(np.asarray(list(indices), dtype=np.int64))
        axis = ops.constant(np.int64(0))
        return self._name(ops.gather(shape, idx, axis), "dims")

    def concat(self, xs: Sequence[T], axis: int) -> T:
        return self._name(ops.concat([_out(x) for x in xs], axis), "concat")

    def reshape(self, x: T, shape: T) -> T:
        return self._name(ops.reshape(x, shape, special_zero=True), "reshape")

    def transpose(self, x: T, perm: Sequence[int]) -> T:
        order = ops.constant(np.asarray(list(perm), dtype=np.int64))
        return self._name(ops.transpose(x, order), "transpose")

    def gather(self, x: T, index: int, axis: int) -> T:
        idx = ops.constant(np.asarray([index], dtype=np.int64))
        ax = ops.constant(np.int64(axis))
        return self._name(ops.gather(x, idx, ax), "gather")

    def slice(self, x: T, start: int, stop: int | None, axis: int) -> T:
        end = np.iinfo(np.int64).max if stop is None else stop
        args = [ops.constant(np.asarray([v], dtype=np.int64)) for v in (start, end, 1, axis)]
        return self._name(ops.slice(x, *args), "slice")

    def expand(self, x: T, shape: T) -> T:
        return self._name(ops.broadcast(x, shape), "expand")

    def unsqueeze(self, x: T, axes: Sequence[int]) -> T:
        ax = ops.constant(np.asarray(list(axes), dtype=np.int64))
        return self._name(ops.unsqueeze(x, ax), "unsqueeze")

    def eye(self, n: T, dtype: str) -> T:
        diagonal = ops.constant(np.asarray([0], dtype=np.int64))
        return self._name(ops.eye(n, n, diagonal, output_type=_OV[dtype]), "eye")

    # -- arithmetic -------------------------------------------------------------------------
    def add(self, a: T, b: T) -> T:
        return self._name(ops.add(a, b), "add")

    def sub(self, a: T, b: T) -> T:
        return self._name(ops.subtract(a, b), "sub")

    def mul(self, a: T, b: T) -> T:
        return self._name(ops.multiply(a, b), "mul")

    def div(self, a: T, b: T) -> T:
        return self._name(ops.divide(a, b), "div")

    def maximum(self, a: T, b: T) -> T:
        return self._name(ops.maximum(a, b), "max")

    def matmul(self, a: T, b: T) -> T:
        return self._name(ops.matmul(a, b, False, False), "matmul")

    def sign(self, x: T) -> T:
        return self._name(ops.sign(x), "sign")

    def exp(self, x: T) -> T:
        return self._name(ops.exp(x), "exp")

    def resize_nearest(self, x: T, size: T) -> T:
        axes = ops.constant(np.asarray([2, 3], dtype=np.int64))
        out = ops.interpolate(x, size, mode="nearest", shape_calculation_mode="sizes",
                              coordinate_transformation_mode="asymmetric",
                              nearest_mode="floor", axes=axes)
        return self._name(out, "resize")

    def argmax(self, x: T, axis: int) -> T:
        k = ops.constant(np.int64(1))
        top = ops.topk(x, k, axis, "max", "none", index_element_type=ov.Type.i64)
        return self._name(top.output(1), "argmax")

    def take(self, x: T, indices: T, axis: int) -> T:
        return self._name(ops.gather(x, indices, ops.constant(np.int64(axis))), "take")

    def take_per_image(self, x: T, indices: T) -> T:
        axis = ops.constant(np.int64(1))
        return self._name(ops.gather(x, indices, axis, batch_dims=1), "take")

    def topk(self, x: T, k: int, axis: int) -> T:
        top = ops.topk(x, ops.constant(np.int64(k)), axis, "max", "value",
                       index_element_type=ov.Type.i64)
        return self._name(top.output(1), "topk")

    def cast(self, x: T, dtype: str) -> T:
        return self._name(ops.convert(x, _OV[dtype]), "cast")

    def dtype(self, x: T) -> str:
        return str(_out(x).get_element_type().get_type_name())

    # -- reductions -------------------------------------------------------------------------
    def _axes(self, axes: Sequence[int]) -> Any:
        return ops.constant(np.asarray(list(axes), dtype=np.int64))

    def reduce_mean(self, x: T, axes: Sequence[int], keepdims: bool) -> T:
        return self._name(ops.reduce_mean(x, self._axes(axes), keepdims), "mean")

    def channel_mean(self, x: T, channels: int) -> T:
        return self.reduce_mean(x, [1], keepdims=False)

    def reduce_sum(self, x: T, axes: Sequence[int], keepdims: bool) -> T:
        return self._name(ops.reduce_sum(x, self._axes(axes), keepdims), "sum")

    def reduce_min(self, x: T, axes: Sequence[int], keepdims: bool) -> T:
        return self._name(ops.reduce_min(x, self._axes(axes), keepdims), "min")

    def reduce_max(self, x: T, axes: Sequence[int], keepdims: bool) -> T:
        return self._name(ops.reduce_max(x, self._axes(axes), keepdims), "max")


# -- the undo record: what an insertion removed or rewired of the original, to strip it -----
def _sources(node: Any) -> list[list[Any]]:
    return [[i.get_source_output().get_node().get_friendly_name(),
             i.get_source_output().get_index()] for i in node.inputs()]


def _names(node: Any) -> list[list[str]]:
    return [sorted(o.get_names()) for o in node.outputs()]


def _plain(value: Any) -> Any:
    """An attribute value as JSON can hold it."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value if isinstance(value, bool | int | float | str) or value is None else str(value)


def _removed(node: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": node.get_type_name(),
                             "version": node.get_type_info().version_id,
                             "attrs": {k: _plain(v) for k, v in node.get_attributes().items()}}
    if node.get_type_name() == "Constant":
        data = np.ascontiguousarray(node.get_data())
        entry["const"] = {"dtype": data.dtype.str, "shape": list(data.shape),
                          "data": base64.b64encode(data.tobytes()).decode("ascii")}
    return entry


def undo_record(original: ov.Model, model: ov.Model) -> dict[str, Any]:
    """The original ops (by friendly name, in topological order) that `model` no longer has
    (`type`, `attrs`, ... to re-create them), or whose inputs or tensor names it changed:
    with what `OVBuilder.restore` needs to put them back."""
    now = {n.get_friendly_name(): n for n in model.get_ordered_ops()}
    ordered = original.get_ordered_ops()
    if len({n.get_friendly_name() for n in ordered}) != len(ordered):
        return {"format": "ir", "error": "the original's op names are not unique"}
    entries = []
    for node in ordered:
        name, same = node.get_friendly_name(), now.get(node.get_friendly_name())
        entry: dict[str, Any] = {"op": name, "inputs": _sources(node), "names": _names(node)}
        if same is None or same.get_type_name() != node.get_type_name():
            entries.append({**entry, **_removed(node)})
        elif _sources(same) != entry["inputs"] or _names(same) != entry["names"]:
            entries.append(entry)
    return {"format": "ir", "ops": entries}


def _tensors(model: ov.Model) -> dict[str, ov.Output]:
    return {name: out for n in model.get_ordered_ops() for out in n.outputs()
            for name in out.get_names()}
