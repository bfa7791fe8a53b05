"""An augmented IR served unchanged over the V2 / Open Inference Protocol (KServe's Python
model server, `tools/kserve_openvino.py`, on 127.0.0.1): a `tritonclient` HTTP request with
a photo gets `saliency_map` back as UINT8 `[1, K, h, w]`, equal to a local run of the file."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
from PIL import Image

import xaigraph
from tests.extras import require
from xaigraph import model_info
from xaigraph.session import Session

require("kserve")
httpclient = require("tritonclient.http")

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(model_info.__file__).parent / "data"
NAME = "lite0"
START_TIMEOUT = 120.0  # seconds for the server to import KServe and compile the model
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def augmented(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("v2") / "lite0.xml"
    result = xaigraph.insert(DATA / "efficientnet_lite0.onnx", feature_vector=True)
    xaigraph.save(result, out)
    return out


@pytest.fixture(scope="module")
def server(augmented: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server's `host:port`, ready; stopped (killed if need be) at the end."""
    port = free_port()
    log = tmp_path_factory.mktemp("v2log") / "server.log"
    with log.open("w") as sink:
        proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "kserve_openvino.py"),
                                 str(augmented), "--name", NAME, "--port", str(port),
                                 "--host", "127.0.0.1"], stdout=sink, stderr=subprocess.STDOUT)
    url = f"127.0.0.1:{port}"
    try:
        client = httpclient.InferenceServerClient(url)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if client.is_model_ready(NAME):
                    break
            except Exception:  # not listening yet
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text()[-2000:]
                pytest.fail(f"the V2 server did not become ready (exit {proc.poll()}):\n{tail}")
            time.sleep(0.25)
        client.close()
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_saliency_map_arrives_as_a_local_run_gives_it(augmented: Path, server: str) -> None:
    recorded = model_info.read(ov.Core().read_model(augmented))
    assert recorded.preprocess is not None  # the bundled model records its preprocessing
    with Image.open(DATA / "chelsea.png") as photo:
        x = recorded.preprocess.apply(photo)
    client = httpclient.InferenceServerClient(server)
    try:
        assert client.is_server_live() and client.is_server_ready()
        tensor = httpclient.InferInput("image", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        asked = [httpclient.InferRequestedOutput(n) for n in ("logits", "saliency_map")]
        response = client.infer(NAME, [tensor], outputs=asked)
    finally:
        client.close()
    meta = response.get_output("saliency_map")
    assert meta["datatype"] == "UINT8" and meta["shape"] == [1, 1000, 7, 7]
    assert response.get_output("feature_vector") is None  # only the outputs asked for
    maps, logits = response.as_numpy("saliency_map"), response.as_numpy("logits")
    want_logits, want_maps = Session.open(augmented).run([x], outputs=["logits",
                                                                      "saliency_map"])
    np.testing.assert_array_equal(maps, want_maps)
    np.testing.assert_allclose(logits, want_logits, rtol=1e-6, atol=1e-6)
    top = int(np.argmax(logits))
    assert maps.dtype == np.uint8 and maps[0, top].max() == 255
