"""Warnings of the client, logged at a bounded rate.

Every cause (no exporter at the path, a full queue, a value that cannot be
encoded, a mistyped argument, ...) is logged on the ``model_exporter_client``
logger the first time it happens, then at most once per ``INTERVAL``
seconds with the number of occurrences not logged since. Logging never
raises into the caller."""

import logging
import threading
import time
import warnings

__all__ = ["Warner", "LOGGER_NAME", "INTERVAL", "UsageWarning"]

#: The logger every client warning goes to.
LOGGER_NAME = "model_exporter_client"
#: Least time between two log lines of the same cause.
INTERVAL = 60.0

logger = logging.getLogger(LOGGER_NAME)


class UsageWarning(UserWarning):
    """A call that does not match the client's API (an unknown keyword,
    a missing argument). Issued with :mod:`warnings` as well as logged, so a
    test run shows it (and ``-W error::model_exporter_client.UsageWarning``
    makes it raise); the serving path never raises."""


class Warner:
    """Rate-limited warnings, one slot per cause."""

    __slots__ = ("lock", "last", "interval")

    def __init__(self, interval=INTERVAL):
        self.lock = threading.Lock()
        self.last = {}  # cause -> [time of the last line, occurrences not logged since]
        self.interval = interval

    def warn(self, cause, msg, *args):
        """Logs ``msg % args`` unless ``cause`` was logged within the
        interval; returns whether it logged."""
        try:
            now = time.monotonic()
            with self.lock:
                slot = self.last.get(cause)
                if slot is not None and now - slot[0] < self.interval:
                    slot[1] += 1
                    return False
                suppressed = slot[1] if slot is not None else 0
                if len(self.last) >= 1024:  # causes are bounded; stay so
                    self.last.clear()
                self.last[cause] = [now, 0]
            if suppressed:
                msg += " (%d more like this since the last warning)"
                args = args + (suppressed,)
            logger.warning("model-exporter client: " + msg, *args)
            return True
        except Exception:
            return False

    def usage(self, cause, msg, *args, stacklevel=2):
        """A usage error: logged like any cause, and issued as a
        :class:`UsageWarning` pointing at the caller's line."""
        if self.warn(cause, msg, *args):
            try:
                warnings.warn("model-exporter client: " + (msg % args), UsageWarning, stacklevel=stacklevel)
            except UsageWarning:
                raise
            except Exception:
                pass
