"""No PHI in application logs: request lines and error reports are scrubbed of patient ids.

Patient ids appear in URLs (`/patients/<id>`, `?next=/patients/<id>`); the filter replaces them with `<redacted>`.
Unhandled errors are logged as their type, the request id and the code location, never with the exception message
(which may quote a value) or local variables.
"""

from __future__ import annotations

import logging
import re
import traceback
from types import TracebackType

from flask import Flask, g

log = logging.getLogger("dashboard.auth")
PATIENT_IN_URL = re.compile(r"(/|%2F)patients(/|%2F)[^\s\"'&#?]+", re.IGNORECASE)


def redact(text: str) -> str:
    return PATIENT_IN_URL.sub(lambda m: f"{m.group(1)}patients{m.group(2)}<redacted>", text)


class RedactPHI(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is passed on unchanged
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


_FILTER = RedactPHI()


def install_log_filter() -> None:
    """Scrub the request log of the development server and our own loggers (idempotent)."""
    for name in ("werkzeug", "dashboard", "gunicorn.access", "gunicorn.error"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)


def install_error_logging(server: Flask) -> None:
    """Replace Flask's exception log (message + locals-free traceback) with type, request id and code location."""

    def log_exception(exc_info: tuple[type[BaseException], BaseException, TracebackType | None]) -> None:
        kind = exc_info[0].__name__ if exc_info[0] else "error"
        where = "".join(traceback.format_list(traceback.extract_tb(exc_info[2])[-6:]))
        log.error("unhandled %s in request %s\n%s", kind, g.get("request_id", "-"), redact(where))

    server.log_exception = log_exception  # type: ignore[method-assign]
