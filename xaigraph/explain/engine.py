"""The local engine: decoding and writing in worker threads, inference on the runtime.

    for result in run(explainer, items, finish=..., fail=...):
        ...                                  # in input order, as soon as each is done

Three stages, joined by bounded queues, so that memory stays flat in the number of images
(the items are read lazily, a generator is never materialised):

1. decode + preprocess (`runner.decode`) in a thread pool, at most `prefetch` items ahead;
2. inference in one thread: batches of `spec.batch` images through `Explainer.stream`
   (OpenVINO's asynchronous infer requests overlap them), at most `queue` batches waiting;
3. `finish(decoded, row)` (rendering, PNG encoding, writing) in a thread pool.

The main thread forms batches, keeps every image's slot in input order and yields results
from the front; it holds at most `window` images not yet yielded. An item `skip` returns a
result for (resume) and an image that fails to decode (`fail`) take their slot at once.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from xaigraph.explain.explainer import Explainer, batch, unbatch
from xaigraph.explain.io.decode import Decoded, decode

__all__ = ["run"]

R = TypeVar("R")
_STOP = None
_TICK = 0.05  # seconds the inference thread waits for a batch before it hands back results


def _workers() -> int:
    """Threads per pool: one per core, at most 4. On 2 cores 1 decoder + 1 writer fell behind
    inference with overlays (0.62 of the floor's images/s against 0.68 with 2 + 2)."""
    return max(1, min(4, os.cpu_count() or 1))


Member = tuple[Decoded, "Future[Any]"]


def run(
    explainer: Explainer,
    items: Iterable[Any],
    *,
    finish: Callable[[Decoded, dict[str, Any]], R],
    fail: Callable[[Any, str], R],
    skip: Callable[[Any], R | None] | None = None,
    decode_workers: int | None = None,
    write_workers: int | None = None,
    queue_size: int = 4,
) -> Generator[R, None, None]:
    """The results of `items` in input order (see the module's docstring)."""
    pipeline = _Pipeline(explainer, finish, decode_workers or _workers(),
                         write_workers or _workers(), queue_size)
    try:
        yield from pipeline.results(items, fail, skip)
    finally:
        pipeline.close()


class _Pipeline:
    """The three stages of one run: pools, the batch queue, the inference thread."""

    def __init__(self, explainer: Explainer, finish: Callable[[Decoded, dict[str, Any]], Any],
                 decode_workers: int, write_workers: int, queue_size: int) -> None:
        self.explainer = explainer
        self.finish = finish
        self.size = explainer.spec.batch
        self.prefetch = self.size + 2 * decode_workers
        self.window = self.size * (queue_size + 4) + self.prefetch
        self.batches: queue.Queue[tuple[dict[str, np.ndarray], list[Member]] | None]
        self.batches = queue.Queue(maxsize=queue_size)
        self.decoders = ThreadPoolExecutor(decode_workers, thread_name_prefix="xaigraph-decode")
        self.writers = ThreadPoolExecutor(write_workers, thread_name_prefix="xaigraph-write")
        self.failure: list[BaseException] = []
        self.stopping = threading.Event()
        self.current: list[Member] = []
        explainer.cancel.clear()
        self.worker = threading.Thread(target=self._infer, name="xaigraph-infer", daemon=True)
        self.worker.start()

    def _infer(self) -> None:
        """The inference thread: batches from the queue through the explainer, each image's
        row to a writer; a failure goes to the main thread, which raises it."""
        waiting: deque[list[Member]] = deque()

        def feed() -> Iterator[dict[str, np.ndarray] | None]:
            while not self.stopping.is_set():
                try:
                    got = self.batches.get(timeout=_TICK)
                except queue.Empty:  # the main thread may wait for a batch already done
                    yield None  # before it sends the next one: hand back what is done
                    continue
                if got is _STOP:
                    return
                waiting.append(got[1])
                yield got[0]

        try:
            for out in self.explainer.stream(feed()):
                if self.stopping.is_set():
                    break
                members = waiting.popleft()
                for (decoded, slot), row in zip(members, unbatch(out), strict=True):
                    done = self.writers.submit(self.finish, decoded, row)
                    done.add_done_callback(functools.partial(_transfer, slot=slot))
        except BaseException as exc:
            self.failure.append(exc)
            self._fail_all(waiting, exc)

    def _fail_all(self, waiting: deque[list[Member]], exc: BaseException) -> None:
        """Fail the slots waiting for inference and those still queued (which unblocks the
        main thread)."""
        groups = list(waiting)
        while True:
            try:
                got = self.batches.get_nowait()
            except queue.Empty:
                break
            if got is not _STOP:
                groups.append(got[1])
        for members in groups:
            for _, slot in members:
                if not slot.done():
                    slot.set_exception(exc)

    def _send(self) -> None:
        """The batch being formed to the inference thread (or failed with its failure)."""
        if not self.current:
            return
        members, self.current = self.current, []
        while not self.stopping.is_set():
            if self.failure:
                for _, slot in members:
                    slot.set_exception(self.failure[0])
                return
            try:
                self.batches.put((batch([d for d, _ in members], self.explainer.spec.targets),
                                  members), timeout=0.1)
                return
            except queue.Full:
                continue

    def results(self, items: Iterable[Any], fail: Callable[[Any, str], Any],
                skip: Callable[[Any], Any] | None) -> Iterator[Any]:
        """Every item's result in input order; at most `window` images not yet yielded."""
        slots: deque[Future[Any]] = deque()
        preprocess = self.explainer.spec.preprocess
        for entry in _ordered(items, skip, self.decoders, self.prefetch, preprocess):
            slot: Future[Any] = Future()
            if not isinstance(entry, Decoded):
                slot.set_result(entry[0])
            elif entry.error is not None:
                slot.set_result(fail(entry.item, entry.error))
            else:
                self.current.append((entry, slot))
                if len(self.current) >= self.size:
                    self._send()
            slots.append(slot)
            while slots and slots[0].done():
                yield slots.popleft().result()
            if len(slots) > self.window:
                self._send()  # the oldest slot may wait in the batch being formed
                yield slots.popleft().result()
        self._send()
        _put_stop(self.batches, self.failure)
        while slots:
            yield slots.popleft().result()
        self.worker.join()
        if self.failure:
            raise self.failure[0]

    def close(self) -> None:
        """Whatever ends the run (the last result, an error, a signal in the main thread),
        the inference thread is stopped and joined before anything else: a process that
        leaves while that thread is inside the runtime dies with SIGABRT."""
        self.stopping.set()
        self.explainer.cancel.set()
        if self.worker.is_alive():
            _put_stop(self.batches, self.failure, wait=False)
            self.worker.join()
        self.decoders.shutdown(wait=True, cancel_futures=True)
        self.writers.shutdown(wait=True, cancel_futures=True)


def _transfer(done: Future[Any], slot: Future[Any]) -> None:
    if done.cancelled() or slot.done():  # the run is being stopped
        return
    exc = done.exception()
    if exc is not None:
        slot.set_exception(exc)
    else:
        slot.set_result(done.result())


def _put_stop(batches: queue.Queue[Any], failure: list[BaseException], wait: bool = True
              ) -> None:
    while True:
        try:
            batches.put(_STOP, timeout=0.1)
            return
        except queue.Full:
            if failure or not wait:
                with contextlib.suppress(queue.Empty):  # make room: the worker is gone
                    batches.get_nowait()


def _ordered(items: Iterable[Any], skip: Callable[[Any], Any] | None,
             pool: ThreadPoolExecutor, prefetch: int, preprocess: Any
             ) -> Iterator[Decoded | tuple[Any]]:
    """Items decoded in the pool, in order, at most `prefetch` ahead; a skipped item comes
    as `(result,)`."""
    pending: deque[Future[Decoded] | tuple[Any]] = deque()
    for item in items:
        kept = skip(item) if skip is not None else None
        if kept is not None:
            pending.append((kept,))
        else:
            pending.append(pool.submit(decode, item, preprocess))
        while len(pending) > prefetch:
            yield _resolve(pending.popleft())
    while pending:
        yield _resolve(pending.popleft())


def _resolve(entry: Future[Decoded] | tuple[Any]) -> Decoded | tuple[Any]:
    return entry if isinstance(entry, tuple) else entry.result()
