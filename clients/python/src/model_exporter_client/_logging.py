"""Forwarding Python log records as ``log`` events."""

import logging

from ._encode import jsonable
from ._warn import LOGGER_NAME

__all__ = ["ModelExporterHandler"]

# Attributes every LogRecord has; anything else on a record came from
# ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


def level_name(levelno):
    """The protocol's level for a ``logging`` level number (custom levels
    take the standard level at or below them)."""
    if levelno >= logging.CRITICAL:
        return "critical"
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warning"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


class ModelExporterHandler(logging.Handler):
    """A logging handler that sends each record as a ``log`` event.

    ``component`` is the event's component (a bounded label); by default the
    logger's name. The message is ``record.getMessage()``; fields passed
    with ``extra=`` become the event's metadata when they are JSON values,
    and a logged exception adds ``exception`` (its class name). Like the
    client, the handler never raises: failures are counted in
    ``client.stats``."""

    def __init__(self, client, component=None, level=logging.NOTSET):
        super().__init__(level)
        self.client = client
        self.component = component

    def emit(self, record):
        if record.name == LOGGER_NAME:
            return  # the client's own warnings about reaching the exporter
        try:
            meta = {}
            for k, v in record.__dict__.items():
                if k not in _STANDARD and not k.startswith("_") and jsonable(v):
                    meta[k] = v
            if record.exc_info and record.exc_info[0] is not None:
                meta["exception"] = record.exc_info[0].__name__
            self.client.log(
                level_name(record.levelno),
                record.getMessage(),
                component=self.component if self.component is not None else record.name,
                metadata=meta or None,
            )
        except Exception as e:
            self.client._invalid("log_record", "a log record could not be forwarded: %s", e)
