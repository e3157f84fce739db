"""Checks of a batch's input file at create: every line JSON, a unique non-empty
``custom_id``, ``method`` POST, ``url`` the batch's endpoint, a body the endpoint's dialect
accepts, not streamed, naming a model the key may use.

Every problem names its line number and ``custom_id``; the first :data:`MAX_REPORTED` are
reported in one OpenAI-shaped 400 (``param`` ``input_file_id``, ``code``
``invalid_batch_input``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from sluice.auth.principal import Principal
from sluice.errors import BadRequest, ErrorKind, GatewayError
from sluice.pipeline.dialects.base import Dialect
from sluice.storage.batches import NewLine

MAX_REPORTED = 10
"""Problems listed in one error message (the count of the others follows)."""
CUSTOM_ID_CHARS = 512

Resolve = Callable[[str, Principal], None]
"""Raises ``GatewayError`` when ``principal`` may not use the model named."""


class InvalidInput(GatewayError):
    def __init__(self, problems: list[str], more: int) -> None:
        text = "; ".join(problems)
        if more:
            text += f"; and {more} more"
        super().__init__(
            ErrorKind.CALLER_BAD_REQUEST,
            f"the input file is not a valid batch: {text}",
            param="input_file_id",
            code="invalid_batch_input",
        )


def parse_lines(
    data: bytes,
    *,
    endpoint: str,
    dialect: Dialect,
    principal: Principal,
    resolve: Resolve,
    max_lines: int,
    max_line_bytes: int,
) -> list[NewLine]:
    """The lines of an input file, each body as compact JSON; raises :class:`InvalidInput`
    naming every problem's line (blank lines are skipped, numbering counts them)."""
    problems: list[str] = []
    more = 0
    lines: list[NewLine] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        if len(lines) + len(problems) + more >= max_lines:
            raise BadRequest(
                f"the input file has more than {max_lines} lines (batches.max_lines)",
                param="input_file_id",
            )
        try:
            lines.append(
                _line(
                    number,
                    raw,
                    endpoint=endpoint,
                    dialect=dialect,
                    principal=principal,
                    resolve=resolve,
                    seen=seen,
                    max_line_bytes=max_line_bytes,
                )
            )
        except _Problem as exc:
            if len(problems) < MAX_REPORTED:
                problems.append(str(exc))
            else:
                more += 1
    if problems:
        raise InvalidInput(problems, more)
    if not lines:
        raise BadRequest("the input file has no lines", param="input_file_id")
    return lines


class _Problem(Exception):
    pass


def _line(
    number: int,
    raw: bytes,
    *,
    endpoint: str,
    dialect: Dialect,
    principal: Principal,
    resolve: Resolve,
    seen: dict[str, int],
    max_line_bytes: int,
) -> NewLine:
    where = f"line {number}"
    if len(raw) > max_line_bytes:
        raise _Problem(f"{where}: longer than {max_line_bytes} bytes (batches.max_line_bytes)")
    try:
        item = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _Problem(f"{where}: not valid JSON") from None
    if not isinstance(item, dict):
        raise _Problem(f"{where}: not a JSON object")
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise _Problem(f"{where}: custom_id must be a non-empty string")
    if len(custom_id) > CUSTOM_ID_CHARS:
        raise _Problem(f"{where}: custom_id is longer than {CUSTOM_ID_CHARS} characters")
    where = f"line {number} (custom_id {custom_id!r})"
    if custom_id in seen:
        raise _Problem(f"{where}: custom_id already used on line {seen[custom_id]}")
    seen[custom_id] = number
    _check(item, where, endpoint=endpoint)
    body = orjson.dumps(item["body"])
    try:
        req = dialect.parse(body)
        if req.stream:
            raise BadRequest("stream must be false in a batch", param="stream")
        resolve(req.model, principal)
    except GatewayError as exc:
        param = f" ({exc.param})" if exc.param else ""
        raise _Problem(f"{where}: {exc.message}{param}") from None
    return NewLine(number, custom_id, body.decode())


def _check(item: dict[str, Any], where: str, *, endpoint: str) -> None:
    method = item.get("method")
    if method != "POST":
        raise _Problem(f"{where}: method must be 'POST', not {method!r}")
    url = item.get("url")
    if url != endpoint:
        raise _Problem(f"{where}: url {url!r} is not the batch's endpoint {endpoint!r}")
    if not isinstance(item.get("body"), dict):
        raise _Problem(f"{where}: body must be a JSON object")
    extra = set(item) - {"custom_id", "method", "url", "body"}
    if extra:
        raise _Problem(f"{where}: unknown field {sorted(extra)[0]!r}")
