"""A client for model-exporter: tells the sidecar about each request a
model serves, without ever blocking or raising into the model's code.

    from model_exporter_client import Client

    client = Client(model="fraud", version="v3")
    client.inference(latency_ms=52.3, prediction=1, confidence=0.91,
                     features={"age": 35, "amount": 120.5}, id="r-17")

Events are gathered into batches and sent by a background thread within
``FLUSH_INTERVAL``; what cannot be sent is counted by reason
(``client.stats``), reported to the exporter, and warned about on the
``model_exporter_client`` logger. See docs/clients.md for the whole API.
"""

from ._client import Client, default_path
from ._logging import ModelExporterHandler
from ._timing import Request
from ._transport import (
    BUFFER,
    FLUSH_INTERVAL,
    MAX_DATAGRAM,
    REASONS,
    RECONNECT_DELAY,
    REPORT_INTERVAL,
    STREAM_BUFFER,
)
from ._warn import INTERVAL as WARNING_INTERVAL
from ._warn import LOGGER_NAME, UsageWarning

__all__ = [
    "Client",
    "Request",
    "ModelExporterHandler",
    "UsageWarning",
    "default_path",
    "BUFFER",
    "STREAM_BUFFER",
    "MAX_DATAGRAM",
    "FLUSH_INTERVAL",
    "REPORT_INTERVAL",
    "RECONNECT_DELAY",
    "REASONS",
    "LOGGER_NAME",
    "WARNING_INTERVAL",
]

__version__ = "0.2.0"
