"""The local engine: input order kept, bounded look-ahead (a generator is never
materialised), bad images in their place, failures raised rather than hung on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from xaigraph.explain import engine
from xaigraph.explain.explainer import Explainer
from xaigraph.explain.plan import prepare


@dataclass(frozen=True)
class Item:
    index: int
    path: Path
    key: str
    image: Any = None
    boxes: tuple[Any, ...] = ()
    labels: tuple[str, ...] = ()


def _image(i: int) -> Image.Image:
    rng = np.random.default_rng(i)
    return Image.fromarray(rng.integers(0, 256, (18, 18, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def explainer(cnn_file: Callable[..., Path]) -> Explainer:
    return Explainer(prepare(cnn_file("gap_fc", False, "onnx17"), batch_size=4))


def test_generator_is_read_a_bounded_way_ahead(explainer: Explainer) -> None:
    pulled = 0

    def items() -> Iterator[Item]:
        nonlocal pulled
        for i in range(300):
            pulled += 1
            yield Item(i, Path(f"<{i}>"), f"k{i}", _image(i % 7))

    ahead = []
    order = []
    for result in engine.run(explainer, items(), finish=lambda d, row: (d.item.index, row),
                             fail=lambda item, msg: (item.index, msg)):
        order.append(result[0])
        ahead.append(pulled - len(order))
    assert order == list(range(300))
    assert max(ahead) <= 64  # the window: independent of the number of images
    assert pulled == 300


def test_bad_images_keep_their_place(explainer: Explainer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    items = [Item(i, bad, f"k{i}") if i in (0, 5, 6) else
             Item(i, Path(f"<{i}>"), f"k{i}", _image(i)) for i in range(11)]
    got = list(engine.run(explainer, items, finish=lambda d, row: ("ok", d.item.index,
                                                                   row["targets"][0]),
                          fail=lambda item, msg: ("error", item.index, msg)))
    assert [g[1] for g in got] == list(range(11))
    assert [g[0] for g in got] == ["error" if i in (0, 5, 6) else "ok" for i in range(11)]
    assert all(str(bad) in g[2] for g in got if g[0] == "error")


def test_skipped_items_are_not_decoded(explainer: Explainer) -> None:
    items = [Item(i, Path(f"<{i}>"), f"k{i}", _image(i) if i % 2 else None) for i in range(8)]
    got = list(engine.run(explainer, items, finish=lambda d, row: ("done", d.item.index),
                          fail=lambda item, msg: ("error", item.index),
                          skip=lambda item: None if item.index % 2 else ("kept", item.index)))
    assert got == [("kept" if i % 2 == 0 else "done", i) for i in range(8)]


def test_a_failing_writer_is_raised(explainer: Explainer) -> None:
    items = [Item(i, Path(f"<{i}>"), f"k{i}", _image(i)) for i in range(20)]

    def finish(decoded: Any, row: Any) -> int:
        if decoded.item.index == 9:
            raise OSError(28, "No space left on device")
        return int(decoded.item.index)

    seen = []
    with pytest.raises(OSError, match="No space"):
        for result in engine.run(explainer, items, finish=finish, fail=lambda i, m: -1):
            seen.append(result)
    assert seen == list(range(9))


def test_a_failing_inference_is_raised(explainer: Explainer) -> None:
    class Broken:
        spec = explainer.spec
        cancel = threading.Event()

        def stream(self, batches: Any) -> Iterator[Any]:
            next(iter(batches))
            raise RuntimeError("the runtime failed")

    items = [Item(i, Path(f"<{i}>"), f"k{i}", _image(i)) for i in range(30)]
    with pytest.raises(RuntimeError, match="runtime failed"):
        list(engine.run(Broken(), items, finish=lambda d, r: 0,  # type: ignore[arg-type]
                        fail=lambda i, m: -1))


def test_results_keep_coming_while_the_main_thread_waits(explainer: Explainer) -> None:
    """A runtime's stream hands back a batch's result only when it is asked for more (it
    pulls the next batch, then yields what is done). When the main thread waits for its
    oldest image (the window is full) before it sends another batch, the inference thread
    ticks (`None` batches) so that the results it holds come back: before the ticks, both
    threads waited for each other for ever."""

    class Lazy:
        spec = explainer.spec
        cancel = threading.Event()

        def stream(self, batches: Any) -> Iterator[Any]:
            started: list[tuple[float, Any]] = []
            for b in batches:
                if b is not None:
                    started.append((time.perf_counter(), b))
                while started and time.perf_counter() - started[0][0] > 0.1:  # 100 ms each
                    yield explainer(started.pop(0)[1])
            for _, b in started:
                yield explainer(b)

    items = [Item(i, Path(f"<{i}>"), f"k{i}", _image(i % 7)) for i in range(40)]
    done: list[int] = []

    def consume() -> None:
        for result in engine.run(Lazy(), items, finish=lambda d, row: d.item.index,  # type: ignore[arg-type]
                                 fail=lambda item, msg: -1, queue_size=1):
            done.append(result)

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), f"no result after {len(done)} of 40 images: a deadlock"
    assert done == list(range(40))
