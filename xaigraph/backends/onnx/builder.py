"""`OpBuilder` for ONNX: appends standard ONNX nodes to a `ModelProto`'s graph.

Ops are emitted in the form the model's opset wants (attributes before opset 13/18, inputs
after). `finish()` re-sorts the nodes topologically and drops nodes that no output needs any
more (the original head, when its scores are now computed in the explanation's batch).
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from xaigraph.backends.onnx.view import DTYPES, opset_version
from xaigraph.errors import MethodError
from xaigraph.graph_view import GraphView, Value
from xaigraph.ops import NUMPY_TYPES, BuilderBase, T, broadcast_fixed, relax_shape

__all__ = ["ONNXBuilder", "cleanup", "toposort", "undo_record"]

MIN_OPSET = 9  # everything the builder emits exists at opset 9 (EyeLike, broadcasting Max)
_ONNX_TYPES: dict[str, int] = {name: int(code) for code, name in DTYPES.items()}


def _binary(op: str) -> Callable[[ONNXBuilder, T, T], T]:
    """The builder method for the two-input ONNX op `op` (output typed as its first input)."""

    def build(self: ONNXBuilder, a: T, b: T) -> T:
        return self._node(op, [a, b], self.dtype(a))

    build.__name__ = op.lower()
    return build


class ONNXBuilder(BuilderBase):
    """Builds into `model` (modified in place); `view` must describe the same model."""

    def __init__(self, model: onnx.ModelProto, view: GraphView | None,
                 prefix: str = "xai") -> None:
        super().__init__(view)
        self.model = model
        self.graph = model.graph
        if opset_version(model) < MIN_OPSET:
            raise MethodError(
                f"the model uses ONNX opset {opset_version(model)}; xaigraph needs opset "
                f"{MIN_OPSET} or later for ONNX output (convert it with onnx.version_converter, "
                "or write IR with an .xml output)"
            )
        self.prefix = prefix
        self.opset = opset_version(model)
        self._names = _all_names(model)
        # nodes that were dead before we came stay: only our own leftovers are removed
        self._dead_before = {_node_key(self.graph.node[i]) for i in _dead_nodes(self.graph)}
        self._counter = itertools.count(1)
        self._shapes: dict[str, str] = {}
        self._made: set[str] = set()  # initializers added by this builder
        self._dtypes: dict[str, str] = {}  # element type of every tensor name known
        for vi in itertools.chain(self.graph.input, self.graph.output, self.graph.value_info):
            if vi.type.HasField("tensor_type"):
                self._dtypes[vi.name] = DTYPES.get(vi.type.tensor_type.elem_type, "?")
        for init in self.graph.initializer:
            self._dtypes[init.name] = DTYPES.get(init.data_type, "?")
        for op in view.ops.values() if view is not None else ():
            for t in op.outputs:
                for name in t.names:
                    self._dtypes.setdefault(name, t.dtype)

    # -- naming and emitting ------------------------------------------------------------
    def _fresh(self, hint: str) -> str:
        while True:
            name = f"{self.prefix}/{hint}_{next(self._counter)}"
            if name not in self._names:
                self._names.add(name)
                return name

    def _node(self, op: str, inputs: Sequence[str], out_type: str, hint: str | None = None,
              **attrs: Any) -> str:
        """Append one node; `out_type` is its output's element type ('f32', 'i64', ...)."""
        out = self._fresh(hint or op.lower())
        self.graph.node.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
        self._dtypes[out] = out_type
        return out

    # -- existing tensors and outputs -----------------------------------------------------
    def value(self, v: Value) -> T:
        return self._view.ops[v.op].outputs[v.port].names[0]

    def copy(self, op_ids: Sequence[str], inputs: dict[Value, T], outputs: Sequence[Value],
             attention_bias: T | None = None, keep_rows: dict[str, int] | None = None
             ) -> list[T]:
        view = self._view
        mapped: dict[Value, str] = dict(inputs)
        for op_id in op_ids:
            info = view.ops[op_id]
            node = view.native[op_id]
            if info.kind == "const" or not isinstance(node, onnx.NodeProto):
                continue
            args: list[str] = [mapped[v] if v in mapped else self.value(v) for v in info.inputs]
            names = iter(args)
            new_inputs = [next(names) if name else "" for name in node.input]
            relaxed = None
            if node.op_type == "Reshape" and len(info.inputs) > 1:
                relaxed = self._relaxed_shape(node, info.inputs)
                new_inputs[1] = relaxed or new_inputs[1]
            elif info.neutral == "concat":
                axis = next(a.i for a in node.attribute if a.name == "axis")
                new_inputs = broadcast_fixed(self, view, op_id, new_inputs,
                                             [v in mapped for v in info.inputs], axis)
            if attention_bias is not None and info.attrs.get("attention") == "softmax":
                new_inputs[0] = self.add(new_inputs[0], attention_bias)
            if keep_rows and op_id in keep_rows:
                new_inputs = [self.slice(a, 0, keep_rows[op_id], axis=1) if a else a
                              for a in new_inputs]
            new = onnx.NodeProto()
            new.CopyFrom(node)
            if relaxed is not None:  # its 0s copy the input's dims: no allowzero
                kept = [a for a in node.attribute if a.name != "allowzero"]
                del new.attribute[:]
                new.attribute.extend(kept)
            del new.input[:]
            new.input.extend(new_inputs)
            del new.output[:]
            for port, name in enumerate(node.output):
                if not name:
                    new.output.append("")
                    continue
                fresh = self._fresh(name)
                new.output.append(fresh)
                self._dtypes[fresh] = info.outputs[port].dtype
                mapped[Value(op_id, port)] = fresh
            new.name = self._fresh(node.name or node.op_type)
            self.graph.node.append(new)
        missing = [view.describe(v) for v in outputs if v not in mapped]
        if missing:
            raise MethodError(f"head copy does not reach {', '.join(missing)}")
        return [mapped[v] for v in outputs]

    def _relaxed_shape(self, node: onnx.NodeProto, src: list[Value]) -> str | None:
        """A constant target shape for a copy of the Reshape `node` that accepts another
        batch or sequence length (see `relax_shape`), or None to keep the original. Its 0s
        copy the input's dims, so the copy drops `allowzero`; with `allowzero=1` that is
        only the same op when the original shape has no 0 (exporters such as torch's dynamo
        set it on every Reshape)."""
        shape = self._view.const_value(src[1])
        data = self._view.tensor(src[0]).probe
        if shape is None or data is None:
            return None
        allowzero = next((a.i for a in node.attribute if a.name == "allowzero"), 0)
        relaxed = relax_shape(shape, data, special_zero=not allowzero)
        return None if relaxed is None else self.const(relaxed.astype(np.int64))

    def add_output(self, x: T, name: str, shape: Sequence[int | None]) -> None:
        self._rename(x, name)
        dtype = _ONNX_TYPES.get(self._dtypes.get(name, "f32"), onnx.TensorProto.FLOAT)
        dims: list[int | str | None] = list(shape)
        if dims and dims[0] is None:  # the batch: reuse the input's symbolic name if any
            first = next(iter(self.graph.input), None)
            if first is not None and first.type.tensor_type.shape.dim:
                param = first.type.tensor_type.shape.dim[0].dim_param
                dims[0] = param or None
        self.graph.output.append(helper.make_tensor_value_info(name, dtype, dims))

    def output_value(self, name: str) -> T:
        return name

    def remove_output(self, name: str) -> None:
        kept = [out for out in self.graph.output if out.name != name]
        del self.graph.output[:]
        self.graph.output.extend(kept)
        cleanup(self.graph, keep=self._dead_before)
        self._drop_unused_constants()

    def rename_output(self, old: str, new: str) -> None:
        self._rename(old, new)

    def restore(self, record: dict[str, Any]) -> None:
        """Put back what `undo_record` says an insertion removed or rewired: the removed
        nodes (a node of ours producing one of their tensors gets a dead name instead), the
        original inputs of the rewired ones, the dropped initializers; the initializers the
        insertion added become ours to drop once unread (`finish`)."""
        nodes = [onnx.NodeProto.FromString(base64.b64decode(b)) for b in record.get("nodes", [])]
        wanted = {name for node in nodes for name in node.output}
        for node in self.graph.node:
            node.output[:] = [self._fresh(f"{o}_unused") if o in wanted else o
                              for o in node.output]
        self.graph.node.extend(nodes)
        rewired = {repr(r["key"]): r["inputs"] for r in record.get("rewired", [])}
        for node in self.graph.node:
            if repr(_key(node)) in rewired:
                node.input[:] = rewired[repr(_key(node))]
        self.graph.initializer.extend(
            onnx.TensorProto.FromString(base64.b64decode(b)) for b in record.get("inits", []))
        self._made.update(record.get("added_inits", []))
        toposort(self.graph)

    def output_at(self, index: int) -> T:
        return self.graph.output[index].name

    def replace_output(self, name: str, x: T, shape: Sequence[int | None] | None = None
                       ) -> None:
        old = self._fresh(f"{name}_raw")
        self._rename(name, old, outputs_too=False)
        # the graph output keeps its name and now means `x`
        self._rename(x, name, outputs_too=False)
        for out in self.graph.output:
            if out.name == name:
                out.type.tensor_type.elem_type = _ONNX_TYPES[self._dtypes[name]]
                if shape is not None:
                    dims = out.type.tensor_type.shape.dim
                    for i, d in enumerate(shape):
                        if d is not None and i < len(dims):
                            dims[i].Clear()
                            dims[i].dim_value = d

    def replace_value(self, v: Value, x: T) -> None:
        """Swap names: the original producer's output becomes a dead end, `x` takes its name
        (and with it every reader, graph outputs included)."""
        old = self.value(v)
        dead = self._fresh(f"{old}_unused")
        for node in self.graph.node:  # the producer only: the readers stay with the name
            node.output[:] = [dead if name == old else name for name in node.output]
        self._rename(x, old, outputs_too=False)

    def insert_after(self, v: Value, build: Callable[[T], T]) -> T:
        old = self.value(v)
        readers = [(node, i) for node in self.graph.node
                   for i, name in enumerate(node.input) if name == old]
        x = build(old)
        for node, i in readers:
            node.input[i] = x
        return x

    def name(self, x: T) -> str:
        return str(x)

    def _rename(self, old: str, new: str, outputs_too: bool = True) -> None:
        """Rename tensor `old` to `new` everywhere (producers, readers, graph outputs)."""
        for node in self.graph.node:
            for i, name in enumerate(node.output):
                if name == old:
                    node.output[i] = new
            for i, name in enumerate(node.input):
                if name == old:
                    node.input[i] = new
        if outputs_too:
            for out in self.graph.output:
                if out.name == old:
                    out.name = new
        if old in self._dtypes:
            self._dtypes[new] = self._dtypes[old]
        self._names.add(new)

    def finish(self) -> None:
        toposort(self.graph)
        cleanup(self.graph, keep=self._dead_before)
        self._drop_unused_constants()

    def _drop_unused_constants(self) -> None:
        """Remove the initializers this builder made that no node reads any more."""
        read = {name for node in self.graph.node for name in node.input}
        unused = {name for name in self._made if name not in read}
        if not unused:
            return
        for field in (self.graph.initializer, self.graph.input):
            kept = [item for item in field if item.name not in unused]
            if len(kept) != len(field):
                del field[:]
                field.extend(kept)
        self._made -= unused

    # -- constants and shapes ---------------------------------------------------------------
    def const(self, array: np.ndarray) -> T:
        arr = np.asarray(array)
        name = self._fresh("const")
        self._made.add(name)
        tensor = numpy_helper.from_array(arr, name)
        self.graph.initializer.append(tensor)
        if self.model.ir_version < 4:  # before IR 4 every initializer is also a graph input
            self.graph.input.append(
                helper.make_tensor_value_info(name, tensor.data_type, list(arr.shape)))
        self._dtypes[name] = DTYPES[helper.np_dtype_to_tensor_dtype(arr.dtype)]
        return name

    def _i64(self, values: Sequence[int]) -> str:
        return self.const(np.asarray(list(values), dtype=np.int64))

    def shape_of(self, x: T) -> T:
        return self._node("Shape", [x], "i64")

    def dims(self, x: T, indices: Sequence[int]) -> T:
        if x not in self._shapes:  # one Shape per tensor
            self._shapes[x] = self.shape_of(x)
        return self._node("Gather", [self._shapes[x], self._i64(indices)], "i64", "dims",
                          axis=0)

    def concat(self, xs: Sequence[T], axis: int) -> T:
        return self._node("Concat", list(xs), self.dtype(xs[0]), axis=axis)

    def reshape(self, x: T, shape: T) -> T:
        return self._node("Reshape", [x, shape], self.dtype(x))

    def transpose(self, x: T, perm: Sequence[int]) -> T:
        return self._node("Transpose", [x], self.dtype(x), perm=list(perm))

    def unsqueeze(self, x: T, axes: Sequence[int]) -> T:
        if self.opset >= 13:
            return self._node("Unsqueeze", [x, self._i64(axes)], self.dtype(x))
        return self._node("Unsqueeze", [x], self.dtype(x), axes=list(axes))

    def expand(self, x: T, shape: T) -> T:
        return self._node("Expand", [x, shape], self.dtype(x))

    def gather(self, x: T, index: int, axis: int) -> T:
        return self._node("Gather", [x, self._i64([index])], self.dtype(x), axis=axis)

    def slice(self, x: T, start: int, stop: int | None, axis: int) -> T:
        end = np.iinfo(np.int64).max if stop is None else stop
        if self.opset >= 10:
            return self._node("Slice", [x, self._i64([start]), self._i64([end]),
                                        self._i64([axis])], self.dtype(x))
        return self._node("Slice", [x], self.dtype(x), starts=[start], ends=[int(end)],
                          axes=[axis])

    def eye(self, n: T, dtype: str) -> T:
        square = self._node("ConstantOfShape", [self.concat([n, n], 0)], "f32",
                            value=numpy_helper.from_array(np.zeros(1, dtype=np.float32)))
        return self._node("EyeLike", [square], dtype, dtype=_ONNX_TYPES[dtype])

    # -- arithmetic -------------------------------------------------------------------------
    add = _binary("Add")
    sub = _binary("Sub")
    mul = _binary("Mul")
    div = _binary("Div")
    maximum = _binary("Max")
    matmul = _binary("MatMul")

    def sign(self, x: T) -> T:
        return self._node("Sign", [x], self.dtype(x))

    def exp(self, x: T) -> T:
        return self._node("Exp", [x], self.dtype(x))

    def resize_nearest(self, x: T, size: T) -> T:
        if self.opset < 11:
            raise MethodError(f"resizing needs Resize with sizes (opset 11); the model has "
                              f"opset {self.opset}")
        sizes = self.concat([self.dims(x, [0, 1]), size], 0)
        empty = self.const(np.zeros(0, dtype=np.float32))
        return self._node("Resize", [x, empty, empty, sizes], self.dtype(x), mode="nearest",
                          coordinate_transformation_mode="asymmetric", nearest_mode="floor")

    def argmax(self, x: T, axis: int) -> T:
        return self._node("ArgMax", [x], "i64", axis=axis, keepdims=1)

    def take(self, x: T, indices: T, axis: int) -> T:
        return self._node("Gather", [x, indices], self.dtype(x), axis=axis)

    def take_per_image(self, x: T, indices: T) -> T:
        if self.opset < 11:  # no GatherElements: one-hot rows of an identity times the maps
            classes = self.dims(x, [1])
            picks = self.take(self.eye(classes, self.dtype(x)), indices, 0)  # [N, k, K]
            flat = self.reshape(x, self.concat([self.dims(x, [0, 1]), self._i64([-1])], 0))
            chosen = self.matmul(picks, flat)  # [N, k, h*w]
            return self.reshape(chosen, self.concat(
                [self.dims(indices, [0, 1]), self.dims(x, [2, 3])], 0))
        wide = self.unsqueeze(indices, [2, 3])  # [N, k, 1, 1]
        shape = self.concat([self.dims(indices, [0, 1]), self.dims(x, [2, 3])], 0)
        return self._node("GatherElements", [x, self.expand(wide, shape)], self.dtype(x),
                          axis=1)

    def topk(self, x: T, k: int, axis: int) -> T:
        values, indices = self._fresh("topk_values"), self._fresh("topk")
        if self.opset >= 10:
            node = helper.make_node("TopK", [x, self._i64([k])], [values, indices], axis=axis,
                                    name=indices)
        else:
            node = helper.make_node("TopK", [x], [values, indices], axis=axis, k=k,
                                    name=indices)
        self.graph.node.append(node)
        self._dtypes[values], self._dtypes[indices] = self.dtype(x), "i64"
        return indices

    def cast(self, x: T, dtype: str) -> T:
        return self._node("Cast", [x], dtype, to=_ONNX_TYPES[dtype])

    def dtype(self, x: T) -> str:
        return self._dtypes.get(x, "f32")

    # -- reductions -------------------------------------------------------------------------
    def _reduce(self, op: str, x: T, axes: Sequence[int], keepdims: bool) -> T:
        if self.opset >= 18:
            return self._node(op, [x, self._i64(axes)], self.dtype(x), keepdims=int(keepdims))
        return self._node(op, [x], self.dtype(x), axes=list(axes), keepdims=int(keepdims))

    def reduce_mean(self, x: T, axes: Sequence[int], keepdims: bool) -> T:
        return self._reduce("ReduceMean", x, axes, keepdims)

    def channel_mean(self, x: T, channels: int) -> T:
        """A 1x1 convolution with weights 1/C: ONNX Runtime runs it in its blocked layout,
        where a ReduceMean over channels would need a reorder and a strided reduction."""
        dtype = self.dtype(x)
        weights = self.const(np.full((1, channels, 1, 1), 1.0 / channels, dtype=NUMPY_TYPES[dtype]))
        summed = self._node("Conv", [x, weights], dtype)
        if self.opset >= 13:
            return self._node("Squeeze", [summed, self._i64([1])], dtype)
        return self._node("Squeeze", [summed], dtype, axes=[1])

    def reduce_sum(self, x: T, axes: Sequence[int], keepdims: bool) -> T:
        if self.opset >= 13:  # ReduceSum took its axes as an input from opset 13
            return self._node("ReduceSum", [x, self._i64(axes)], self.dtype(x),
                              keepdims=int(keepdims))
        return self._node("ReduceSum", [x], self.dtype(x), axes=list(axes),
                          keepdims=int(keepdims))

    def reduce_min(self, x: T, axes: Sequence[int], keepdims: bool) -> T:
        return self._reduce("ReduceMin", x, axes, keepdims)

    def reduce_max(self, x: T, axes: Sequence[int], keepdims: bool) -> T:
        return self._reduce("ReduceMax", x, axes, keepdims)


def _all_names(model: onnx.ModelProto) -> set[str]:
    g = model.graph
    names = {n.name for n in g.node}
    names.update(x for n in g.node for x in itertools.chain(n.input, n.output))
    names.update(i.name for i in itertools.chain(g.input, g.output, g.value_info, g.initializer))
    return names


def toposort(graph: onnx.GraphProto) -> None:
    """Order the nodes so that every node comes after the producers of its inputs."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        rest = []
        for node in pending:
            if all(name in available for name in node.input if name):
                ordered.append(node)
                available.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):  # a cycle or an outer-scope name: keep the tail as is
            ordered.extend(rest)
            break
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def _dead_nodes(graph: onnx.GraphProto) -> list[int]:
    """Indices of the nodes no graph output depends on (nodes in topological order)."""
    needed = {o.name for o in graph.output}
    dead: list[int] = []
    for index in range(len(graph.node) - 1, -1, -1):
        node = graph.node[index]
        if any(name in needed for name in node.output if name):
            needed.update(name for name in node.input if name)
            for attr in node.attribute:  # names a subgraph reads from the outer scope
                subs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
                needed.update(x for s in subs for n in s.node for x in n.input)
        else:
            dead.append(index)
    return dead


def _node_key(node: onnx.NodeProto) -> tuple[str, ...]:
    return (node.op_type, *node.output)


def cleanup(graph: onnx.GraphProto, keep: Collection[tuple[str, ...]] = ()) -> None:
    """Drop nodes that no graph output depends on, except those whose key is in `keep`."""
    drop = {i for i in _dead_nodes(graph) if _node_key(graph.node[i]) not in keep}
    if drop:
        kept = [node for i, node in enumerate(graph.node) if i not in drop]
        del graph.node[:]
        graph.node.extend(kept)


# -- the undo record: what an insertion removed or rewired of the original, to strip it -----
def _key(node: onnx.NodeProto) -> list[Any]:
    return [node.name, node.op_type, list(node.output)]


def _b64(proto: Any) -> str:
    return base64.b64encode(proto.SerializeToString()).decode("ascii")


def undo_record(original: onnx.ModelProto, model: onnx.ModelProto) -> dict[str, Any]:
    """The original nodes `model` no longer has (whole), those whose inputs it changed (their
    key and original inputs), the original initializers it dropped, and the initializers it
    added: what `ONNXBuilder.restore` needs to put the original back."""
    now = {repr(_key(n)): n for n in model.graph.node}
    removed, rewired = [], []
    for node in original.graph.node:
        same = now.get(repr(_key(node)))
        if same is None:
            removed.append(_b64(node))
        elif list(same.input) != list(node.input):
            rewired.append({"key": _key(node), "inputs": list(node.input)})
    before = {i.name for i in original.graph.initializer}
    after = {i.name for i in model.graph.initializer}
    return {"format": "onnx", "nodes": removed, "rewired": rewired,
            "inits": [_b64(i) for i in original.graph.initializer if i.name not in after],
            "added_inits": sorted(after - before)}
