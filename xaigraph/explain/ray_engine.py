"""The Ray Data engine: the local engine's work (`xaigraph.explain.engine`) as a Ray Data
pipeline, on a local Ray instance or a Ray cluster.

    for result in run(spec, items, finish=..., fail=..., skip=..., options=RayOptions()):
        ...                                  # in input order, as `engine.run` yields them

The same per-batch functions as the local engine (`io.decode`, `explainer`, `io.write`),
scheduled by Ray Data instead of threads:

1. read, decode and preprocess (`runner.decode`): Ray tasks;
2. inference: `Explainer` in a pool of `options.actors` Ray actors, one compiled model per
   actor, a batch dict in and out (`Explainer.stream` over `spec.batch`-image batches);
3. `finish(decoded, row)` (the caller's `runner.write`: render, PNG, .npy, renamed into
   place): Ray tasks. `finish` is pickled to the tasks, so it must be picklable (a
   module-level function or a `functools.partial` of one) and write to a folder every
   node can see. The same holds for the model file when `spec` runs it as it is (an
   augmented model; a model augmented in memory travels in `spec.payload`).

The driver gets the results back, puts them in input order and yields them; `fail(item,
message)` (an image that did not decode) and `skip(item)` (resume: an image already done,
decided before any dataset is built) run on the driver, as in the local engine. Results
and files are therefore the local engine's, timings aside, within the bound of
docs/runtime.md ("The run loop": where Ray's blocks batch an image with others than the
local engine does, a colour may differ by one level).

Items go to Ray a chunk at a time (`options.chunk` images to do), one Dataset per chunk, so
the driver and the object store hold a bounded number of them whatever the run's size.

Ray is an optional extra: without it, `run` raises `BadInputError` naming
`pip install 'xaigraph[ray]'`. A local instance (no `options.address`) is started with the
dashboard off, usage statistics off and Ray's logs kept out of the terminal, and shut down
at the end; a cluster (`options.address`, e.g. `ray://head:10001` or `auto`) is joined and
left running. Every node of a cluster needs xaigraph installed (the same version).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import socket
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any, TypeVar

import numpy as np

from xaigraph.errors import BadInputError
from xaigraph.explain import ray_reaper
from xaigraph.explain.explainer import Explainer, batch, unbatch
from xaigraph.explain.io.decode import Decoded, decode
from xaigraph.explain.plan import ExplainSpec
from xaigraph.signals import Interrupted, deferred

__all__ = ["RAY_MISSING", "RayOptions", "import_ray", "ray_instance", "reachable", "run"]

log = logging.getLogger(__name__)

R = TypeVar("R")

RAY_MISSING = "--engine ray needs Ray: pip install 'xaigraph[ray]'"
ACTOR_CPUS = 1.0  # Ray's CPU reservation of one inference actor
TASK_CPUS = 0.5  # ... of one decode or write task
_QUIET = ("ray", "ray.data")  # Python loggers silenced while Ray runs


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the Ray pipeline runs.

    `address`: a Ray cluster to join (`ray.init(address=...)`); None starts a local
    instance with `num_cpus` logical CPUs (default: this machine's, raised when needed so
    that the actors and one task fit). `actors`: inference actors (default: one per node,
    each actor's runtime using its node's cores). `chunk`: images sent to Ray per Dataset.
    """

    address: str | None = None
    actors: int | None = None
    num_cpus: int | None = None
    chunk: int = 10_000
    timeout: float = 30.0  # seconds `address` has to answer (`--ray-timeout`)

    def __post_init__(self) -> None:
        if not self.timeout > 0 or self.timeout == float("inf"):
            raise BadInputError(f"--ray-timeout {self.timeout}: give a number of seconds > 0")
        if self.actors is not None and self.actors < 1:
            raise BadInputError("--ray-actors must be at least 1")
        if self.num_cpus is not None and self.num_cpus < 1:
            raise BadInputError("the local Ray instance needs at least 1 CPU")
        if self.chunk < 1:
            raise BadInputError("the Ray chunk size must be at least 1")


def import_ray() -> ModuleType:
    """`ray` with Ray Data, or `BadInputError(RAY_MISSING)`."""
    try:
        with deferred():  # a signal inside a native module's initialisation breaks it
            import ray
            import ray.data  # the `data` extra
    except ImportError as exc:
        raise BadInputError(RAY_MISSING) from exc
    return ray


# -- the Ray instance ---------------------------------------------------------------------------

def _local_cpus(options: RayOptions) -> int:
    """Logical CPUs of a local instance: the machine's (or `num_cpus`), and at least enough
    for the actors plus one decode or write task (Ray would wait for ever otherwise)."""
    cpus = options.num_cpus or os.cpu_count() or 1
    actors = options.actors or 1
    return max(cpus, int(np.ceil(actors * ACTOR_CPUS + TASK_CPUS)))


@contextmanager
def ray_instance(options: RayOptions) -> Iterator[ModuleType]:
    """Ray connected for the block: an instance already connected in this process (kept),
    the cluster at `options.address` (joined, left running), or a local instance (started,
    then shut down). Ray's Python loggers and warnings are silenced for the block (what
    fails comes back as an exception), its progress bars off; the signal handlers that
    `ray.init` replaces are put back."""
    ray = import_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report over the network
    levels = {name: logging.getLogger(name).level for name in _QUIET}
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = False
    reaper = None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"ray(\.|$)")
        try:
            _silence()
            if not ray.is_initialized():
                started = True  # shut down below also when a signal ends `_start`
                if options.address is None:  # its processes end with this one (ray_reaper)
                    reaper = ray_reaper.start()
                _start(ray, options)
            _restore(handlers)
            _silence()  # ray.init configures the "ray" logger again
            context = ray.data.DataContext.get_current()
            context.enable_progress_bars = False
            context.print_on_execution_start = False
            context.enable_auto_log_stats = False
            yield ray
        finally:
            if started:  # (ray.shutdown sets SIGTERM's default action while it runs: a
                with deferred():  # SIGTERM then ends the process, by then committed)
                    ray.shutdown()  # a signal inside it left Ray half shut down: SIGABRT
                    ray_reaper.stop(reaper)
            _restore(handlers)  # what Ray set (at init, at shutdown) is not ours
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


def _restore(handlers: dict[signal.Signals, Any]) -> None:
    """The signal handlers as they were before Ray (it sets its own at init and at
    shutdown, in the main thread)."""
    if threading.current_thread() is threading.main_thread():
        for sig, handler in handlers.items():
            if handler is not None:
                signal.signal(sig, handler)


def _silence() -> None:
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _start(ray: ModuleType, options: RayOptions) -> None:
    """`ray.init`: the cluster at `options.address`, or a local instance (no dashboard,
    the workers' output kept in Ray's log files)."""
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False,
                                  logging_level=logging.CRITICAL)
    if options.address is None:
        kwargs["num_cpus"] = _local_cpus(options)
    if options.address is not None:
        reachable(options.address, options.timeout)  # signals stay live while it waits
    # a local instance starts under `deferred` (a signal inside its start breaks it); a
    # cluster is joined with signals live and within --ray-timeout
    held = deferred() if options.address is None else _within(options.timeout, options.address)
    try:
        with held, _own_sigterm(ray):
            ray.init(address=options.address, **kwargs)
    except SystemExit as exc:  # ray.init's own SIGTERM handler exits with the signal's number
        with contextlib.suppress(Exception):
            ray.shutdown()  # what it started before the signal
        if exc.code == signal.SIGTERM:
            raise Interrupted(signal.SIGTERM) from None
        raise
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = options.address or "a local instance"
        raise BadInputError(f"cannot start or reach Ray ({where}): "
                            f"{' '.join(str(exc).split())}") from exc


@contextmanager
def _within(seconds: float, address: str) -> Iterator[None]:
    """Give up the block after `seconds` (SIGALRM, main thread only): `ray.init` of an address
    that takes connections but is not a Ray cluster would retry for its own minute."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def late(signum: int, frame: Any) -> None:
        raise BadInputError(f"cannot reach Ray at {address}: no Ray answer in {seconds:g} s "
                            "(--ray-timeout)")

    before = signal.signal(signal.SIGALRM, late)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of `ray://HOST:PORT` or `HOST:PORT`; None for `auto` and the like."""
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return None
    return host.strip("[]"), int(port)


def reachable(address: str, timeout: float,
              connect: Callable[..., Any] = socket.create_connection) -> None:
    """Wait up to `timeout` seconds for `address` (`ray://HOST:PORT` or `HOST:PORT`) to
    accept a TCP connection, so that an unreachable cluster fails in one line instead of
    `ray.init` waiting for ever; `BadInputError` when it does not."""
    where = _host_port(address)
    if where is None:
        return
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            connect(where, timeout=max(0.1, min(left, 5.0))).close()
            return
        except TimeoutError:  # no answer yet: wait, up to the deadline
            if time.monotonic() + 0.5 >= deadline:
                raise BadInputError(f"cannot reach Ray at {address}: no answer in "
                                    f"{timeout:g} s (--ray-timeout)") from None
        except OSError as exc:  # refused, no route, unknown host: an answer
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise BadInputError(f"cannot reach Ray at {address}: {reason}") from None
        time.sleep(0.5)


@contextmanager
def _own_sigterm(ray: ModuleType) -> Iterator[None]:
    """`ray.init` without the SIGTERM handler it installs (`sys.exit(15)`, which can land in
    a fork handler of the logging module, where it is ignored and leaves a lock held: the
    run then hangs). Our own handler stays, held back by `signals.deferred` until `ray.init`
    returns. Ray's private hook is looked up, and left alone where it is not there."""
    utils: Any = getattr(getattr(ray, "_private", None), "utils", None)
    original = getattr(utils, "set_sigterm_handler", None)
    if original is None:
        yield
        return
    utils.set_sigterm_handler = lambda handler: None
    try:
        yield
    finally:
        utils.set_sigterm_handler = original


def cluster_actors(ray: ModuleType, options: RayOptions) -> int:
    """The actor count: `options.actors`, else one per alive node; checked against the
    cluster's CPUs so that the pipeline cannot wait for ever for a free CPU."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    actors = options.actors or max(1, len(nodes))
    cpus = float(ray.cluster_resources().get("CPU", 0.0))
    if actors * ACTOR_CPUS + TASK_CPUS > cpus:
        raise BadInputError(
            f"--ray-actors {actors} needs {actors * ACTOR_CPUS + TASK_CPUS:g} CPUs in the Ray "
            f"cluster (one per actor, and some for decoding and writing); it has {cpus:g}")
    return actors


# -- the per-batch functions, as Ray Data runs them ---------------------------------------------
# Rows carry `pos` (the position in the chunk) and pickled objects (`binary` columns), so
# that Ray never has to fit an Item, a Decoded or a record into an Arrow type.

def _at(cwd: str) -> None:
    """Work in the driver's folder `cwd`, as its relative paths (inputs, OUT_DIR) mean: a
    node started by `ray start` elsewhere runs its workers in its own folder. A task runs
    alone in its worker process; where that folder does not exist, the paths are absolute or
    the node does not have the files (the README's rule: the same paths on every node)."""
    if os.getcwd() != cwd:
        with contextlib.suppress(OSError):
            os.chdir(cwd)


def _decode_batch(rows: dict[str, np.ndarray], preprocess: Any, cwd: str
                  ) -> dict[str, np.ndarray]:
    """Task: items -> `Decoded`s (an image that fails carries its `error`)."""
    _at(cwd)
    decoded = [decode(pickle.loads(blob), preprocess) for blob in rows["item"]]
    return {"pos": rows["pos"], "decoded": _pickles(decoded)}


class _Raised:
    """An exception raised in a Ray task or actor, carried back to the driver as data (Ray
    Data would wrap it in its own, losing the original and its one-line message)."""

    def __init__(self, exc: BaseException) -> None:
        try:
            pickle.loads(_dumps(exc))
            self.exc: BaseException = exc
        except Exception:  # not picklable: its text
            self.exc = RuntimeError(f"{type(exc).__name__}: {exc}")


class _Infer:
    """Actor: one `Explainer` (the model compiled once); `Decoded`s -> (`Decoded` without
    its model input, that image's row of the batch dict out; None for an image that did not
    decode, `_Raised` when the model failed)."""

    def __init__(self, spec: ExplainSpec) -> None:
        self.size = spec.batch
        self.failed: _Raised | None = None
        try:
            self.explainer = Explainer(spec)
        except Exception as exc:  # reported on the driver with the first batch
            self.failed = _Raised(exc)

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        decoded: list[Decoded] = [pickle.loads(blob) for blob in rows["decoded"]]
        good = [d for d in decoded if d.error is None]
        explained: dict[int, Any] = {id(d): self.failed for d in good}
        if self.failed is None and good:
            groups = [good[i:i + self.size] for i in range(0, len(good), self.size)]
            try:
                outs = self.explainer.stream(
                    batch(g, self.explainer.spec.targets) for g in groups)
                for group, out in zip(groups, outs, strict=True):
                    for d, row in zip(group, unbatch(out), strict=True):
                        explained[id(d)] = row
            except Exception as exc:
                explained = {id(d): _Raised(exc) for d in good}
        pairs = [(replace(d, input=None), explained.get(id(d))) for d in decoded]
        return {"pos": rows["pos"], "explained": _pickles(pairs)}


def _write_batch(rows: dict[str, np.ndarray], finish: Callable[[Decoded, dict[str, Any]], Any],
                 cwd: str) -> dict[str, np.ndarray]:
    """Task: `finish` each decoded image: ("ok", its result), ("error", why it did not
    decode) or ("raise", `_Raised`)."""
    _at(cwd)
    results: list[tuple[str, Any]] = []
    for blob in rows["explained"]:
        decoded, row = pickle.loads(blob)
        if row is None:
            results.append(("error", decoded.error))
        elif isinstance(row, _Raised):
            results.append(("raise", row))
        else:
            try:
                results.append(("ok", finish(decoded, row)))
            except Exception as exc:
                results.append(("raise", _Raised(exc)))
    return {"pos": rows["pos"], "result": _pickles(results)}


def _dumps(obj: Any) -> bytes:
    """Pickled by Ray's cloudpickle, so that a class or function defined in a script (or a
    closure, such as the CLI's `finish`) travels by value."""
    from ray import cloudpickle

    return bytes(cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def _pickles(objects: list[Any]) -> np.ndarray:
    column = np.empty(len(objects), dtype=object)
    column[:] = [_dumps(o) for o in objects]
    return column


# -- the driver ---------------------------------------------------------------------------------

def _dataset(ray: ModuleType, todo: list[Any], spec: ExplainSpec, actors: int,
             finish: Callable[[Decoded, dict[str, Any]], Any]) -> Any:
    size = spec.batch
    rows = [{"pos": pos, "item": _dumps(item)} for pos, item in enumerate(todo)]
    blocks = max(1, min(len(todo) // size, 200))
    ds = ray.data.from_items(rows, override_num_blocks=blocks)
    ds = ds.map_batches(_decode_batch, batch_size=size, num_cpus=TASK_CPUS,
                        fn_kwargs={"preprocess": spec.preprocess, "cwd": os.getcwd()})
    ds = ds.map_batches(_Infer, batch_size=size, num_cpus=ACTOR_CPUS,
                        compute=ray.data.ActorPoolStrategy(size=actors),
                        fn_constructor_args=(spec,))
    return ds.map_batches(_write_batch, batch_size=size, num_cpus=TASK_CPUS,
                          fn_kwargs={"finish": finish, "cwd": os.getcwd()})


def run(
    spec: ExplainSpec,
    items: Iterable[Any],
    *,
    finish: Callable[[Decoded, dict[str, Any]], R],
    fail: Callable[[Any, str], R],
    skip: Callable[[Any], R | None] | None = None,
    options: RayOptions | None = None,
) -> Generator[R, None, None]:
    """The results of `items` in input order (see the module's docstring); the arguments
    mean what they mean for `engine.run`, with `spec` instead of a compiled `Explainer`.
    Ray is started (or joined) when the first image to do comes: a run that `skip`s every
    image never starts it."""
    options = options or RayOptions()
    source = iter(items)
    with ExitStack() as stack:
        ray: ModuleType | None = None
        actors = 0
        while True:
            slots, todo = _chunk(source, skip, options.chunk)
            if not slots:
                return
            while slots and slots[0][0]:  # kept ones at the front: at once
                yield slots.popleft()[1]
            if todo and ray is None:
                ray = stack.enter_context(ray_instance(options))
                actors = cluster_actors(ray, options)
            if todo:
                assert ray is not None
                yield from _drain(ray, spec, actors, finish, fail, slots, todo)
            while slots:
                done, value, _ = slots.popleft()
                assert done, "a Ray result went missing"
                yield value


def _chunk(source: Iterator[Any], skip: Callable[[Any], Any] | None, size: int
           ) -> tuple[deque[list[Any]], list[list[Any]]]:
    """The next items up to `size` to do: every item's slot `[done, result, item]` in
    order (a kept one done already), and the slots to do."""
    slots: deque[list[Any]] = deque()
    todo: list[list[Any]] = []
    for item in source:
        kept = skip(item) if skip is not None else None
        if kept is not None:
            slots.append([True, kept, item])
            continue
        slot = [False, None, item]
        slots.append(slot)
        todo.append(slot)
        if len(todo) >= size:
            break
    return slots, todo


def _drain(ray: ModuleType, spec: ExplainSpec, actors: int,
           finish: Callable[[Decoded, dict[str, Any]], R], fail: Callable[[Any, str], R],
           slots: deque[list[Any]], todo: list[list[Any]]) -> Iterator[R]:
    """One chunk's Dataset run; the results yielded in order as they come back (the last
    ones are left in `slots`)."""
    ds = _dataset(ray, [slot[2] for slot in todo], spec, actors, finish)
    for row in ds.iter_rows():
        status, value = pickle.loads(row["result"])
        if status == "raise":
            raise value.exc
        slot = todo[int(row["pos"])]
        slot[0], slot[1] = True, (value if status == "ok" else fail(slot[2], value))
        while slots and slots[0][0]:
            yield slots.popleft()[1]
