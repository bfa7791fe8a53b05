"""Serve an OpenVINO IR (an xaigraph-augmented one, unchanged) over the V2 / Open Inference
Protocol with KServe's Python model server: every output of the model, `saliency_map`
included, is returned by name.

    python tools/kserve_openvino.py MODEL.xml --name lite0 --port 8080 [--host 127.0.0.1]

HTTP only (no gRPC), bound to `--host` (KServe binds 0.0.0.0 itself; this binds where it is
told). Compiled for the CPU with f32 inference precision, so that its outputs equal a local
f32 run. MLServer's OpenVINO runtime (mlserver-openvino 0.4.10) is not used: it imports
`openvino.runtime`, which OpenVINO 2025+ no longer has.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import Any

import openvino as ov


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the .xml file (its .bin beside it)")
    parser.add_argument("--name", default="model", help="the model's name in the URLs")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    opts = parser.parse_args()
    sys.argv = sys.argv[:1]  # KServe parses the command line when imported: give it none

    import kserve
    import uvicorn
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
    from kserve.utils.numpy_codec import from_np_dtype

    class OpenVINOModel(kserve.Model):  # type: ignore[misc]
        def load(self) -> bool:
            self.compiled = ov.Core().compile_model(opts.model, "CPU",
                                                    {"INFERENCE_PRECISION_HINT": "f32"})
            self.ready = True
            return True

        def predict(self, request: InferRequest, headers: Any = None) -> InferResponse:
            result = self.compiled({i.name: i.as_numpy() for i in request.inputs})
            asked = {o.name for o in request.request_outputs or ()}
            outputs = []
            for port in self.compiled.outputs:
                if asked and not asked & port.get_names():
                    continue
                data = result[port]
                out = InferOutput(port.get_any_name(), list(data.shape), from_np_dtype(data.dtype))
                out.set_data_from_numpy(data, binary_data=True)
                outputs.append(out)
            return InferResponse(str(uuid.uuid4()), self.name, outputs,
                                 use_binary_outputs=True)

    class Loopback(uvicorn.Config):  # type: ignore[misc]
        def __init__(self, app: Any, **kwargs: Any) -> None:
            super().__init__(app, **{**kwargs, "host": opts.host})

    kserve.protocol.rest.server.uvicorn.Config = Loopback
    model = OpenVINOModel(opts.name)
    model.load()
    kserve.ModelServer(http_port=opts.port, enable_grpc=False, workers=1).start([model])


if __name__ == "__main__":
    main()
