"""Log output: a JSON (or text) formatter for every logger, the redaction filter on every
handler, and the access line (one per request, written from the usage writer's batches).

``uvicorn_log_config`` is handed to uvicorn, which applies it in every worker process;
:func:`install_redaction` then gives the filter the process's secret values at start.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable
from typing import Any

import orjson

from sluice.observability.redact import RedactingFilter, Redactor
from sluice.usage.bounds import ERROR_MESSAGE_CHARS, MODEL_CHARS, text
from sluice.usage.event import UsageEvent

ACCESS_LOGGER = "sluice.access"
_LOGGERS = ("", "sluice", "uvicorn", "uvicorn.error", "uvicorn.access", "aiohttp", "asyncio")
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds")


class _Stamps:
    """``_iso`` for the access lines of a batch, which mostly share their second: the
    date and time part is formatted once per second (same text as :func:`_iso`)."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, ts: float) -> str:
        second = int(ts)
        micros = round((ts - second) * 1e6)  # as datetime.fromtimestamp rounds
        if micros >= 1_000_000 or ts < 0:
            return _iso(ts)
        if second != self._second:
            self._second = second
            self._prefix = dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._prefix}.{micros // 1000:03d}+00:00"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, the access
    fields of an access line (top level), ``exc`` for exceptions, and any other ``extra``.
    An access batch (see :class:`AccessLog`) becomes one line per request."""

    def format(self, record: logging.LogRecord) -> str:
        batch = getattr(record, "access_batch", None)
        if isinstance(batch, list):
            head = {"level": record.levelname.lower(), "logger": record.name}
            stamp = _Stamps()
            dumps = orjson.dumps
            return "\n".join(
                [
                    dumps({"ts": stamp(f.pop("_ts")), **head, "message": "request", **f}).decode()
                    for f in batch
                ]
            )
        out: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name == "access" and isinstance(value, dict):
                out.update(value)
            elif name == "access_batch":
                continue
            elif name not in _STANDARD and not name.startswith("_") and name != "color_message":
                out[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    """``time level logger: message`` plus ``k=v`` access fields."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        batch = getattr(record, "access_batch", None)
        if isinstance(batch, list):
            head = f" {record.levelname} {record.name}: request "
            stamp = _Stamps()
            return "\n".join(
                [
                    stamp(f.pop("_ts"))
                    + head
                    + " ".join([f"{k}={_text_value(v)}" for k, v in f.items() if v is not None])
                    for f in batch
                ]
            )
        line = super().format(record)
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            line += " " + " ".join(f"{k}={v}" for k, v in access.items() if v is not None)
        return line


_NEEDS_QUOTES = re.compile(r'[ "=\n\r\t]|^$')


def _text_value(value: object) -> object:
    """A text line's value: quoted (JSON) when it holds spaces, quotes or line breaks, so
    an error message stays one ``k="..."`` field of one line."""
    if isinstance(value, str) and _NEEDS_QUOTES.search(value):
        return orjson.dumps(value).decode()
    return value


def uvicorn_log_config(*, fmt: str, level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn: one stderr handler with the chosen
    formatter and the redaction filter, used by the root, ``sluice`` and uvicorn loggers."""
    formatter = (
        {"()": "sluice.observability.logging.JsonFormatter"}
        if fmt == "json"
        else {"()": "sluice.observability.logging.TextFormatter"}
    )
    upper = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"sluice": formatter},
        "filters": {"redact": {"()": "sluice.observability.redact.RedactingFilter"}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "sluice",
                "filters": ["redact"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["default"], "level": upper},
        "loggers": {
            "uvicorn": {"handlers": [], "level": upper, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": upper, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": upper, "propagate": True},
        },
    }


def install_redaction(redactor: Redactor) -> None:
    """Make every handler of the known loggers mask with ``redactor``: an existing
    :class:`RedactingFilter` gets it, a handler without one gets a new filter."""
    seen: set[int] = set()
    for name in _LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if id(handler) in seen:
                continue
            seen.add(id(handler))
            found = [f for f in handler.filters if isinstance(f, RedactingFilter)]
            for f in found:
                f.redactor = redactor
            if not found:
                handler.addFilter(RedactingFilter(redactor=redactor))


def access_fields(ev: UsageEvent) -> dict[str, Any]:
    """The access line's fields for one request, after ``_ts`` (its arrival time, which
    the formatters turn into the line's ``ts``). ``model`` is the only caller-written text
    (the rest is generated or from the config); the redaction filter masks it. A refused
    request carries its error message (redacted by the usage observers, cut to the usage
    row's bound) and the field it names (``param``), so the line says why a client broke."""
    message = ev.error_message
    param = ev.error_param
    return {
        "_ts": ev.created_at,
        "request_id": ev.request_id,
        "key_id": ev.key_id,
        "endpoint": ev.endpoint,
        "model": ev.model,
        "provider": ev.provider,
        "deployment": ev.deployment,
        "status": ev.status,
        "error_kind": ev.error_kind,
        "error": None if message is None else text(message, ERROR_MESSAGE_CHARS),
        "param": None if param is None else text(param, MODEL_CHARS),
        "latency_ms": round(ev.latency_ms, 1),
        "ttft_ms": None if ev.ttft_ms is None else round(ev.ttft_ms, 1),
        "input_tokens": ev.prompt_tokens,
        "output_tokens": ev.completion_tokens,
        "cost_micros": ev.cost_micros,
        "streamed": ev.streamed,
        "attempts": ev.attempts,
        "trace_id": ev.trace_id,
    }


class AccessLog:
    """Writes one ``sluice.access`` line per request (a usage-writer observer, so the
    request path never formats a log line). A batch is one log record whose
    ``access_batch`` the formatters above write as one line per request, each stamped with
    the request's arrival time: one pass through the logging machinery per batch."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger(ACCESS_LOGGER)

    def __call__(self, events: Iterable[UsageEvent]) -> None:
        log = self._log
        if not log.isEnabledFor(logging.INFO):
            return
        batch = [access_fields(ev) for ev in events]
        if batch:
            log.info("%d requests", len(batch), extra={"access_batch": batch})
