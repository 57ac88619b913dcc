"""A client for model-exporter: tells the sidecar about each request a
model serves, without ever blocking or raising into the model's code.

    from model_exporter_client import Client

    client = Client(model="fraud", version="v3")
    client.inference(latency_ms=52.3, prediction=1, confidence=0.91,
                     features={"age": 35, "amount": 120.5}, id="r-17")

See the README for the whole API.
"""

from ._client import Client, Request, default_path
from ._logging import ModelExporterHandler
from ._transport import RECONNECT_DELAY, STREAM_BUFFER

__all__ = [
    "Client",
    "Request",
    "ModelExporterHandler",
    "default_path",
    "STREAM_BUFFER",
    "RECONNECT_DELAY",
]

__version__ = "0.1.0"
