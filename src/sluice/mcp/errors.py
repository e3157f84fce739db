"""The JSON-RPC error codes the MCP gateway answers, and the HTTP status each one implies
(for the usage row and for refusals made before a session exists).

The standard codes come from JSON-RPC 2.0; the gateway's own are in the range JSON-RPC
reserves for implementations (-32000..-32099) and are listed in docs/mcp.md.
"""

from __future__ import annotations

from mcp.shared.exceptions import McpError
from mcp.types import INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR, ErrorData

UNAUTHORIZED = -32001
"""No key, or a key the gateway does not accept."""
UPSTREAM_UNAVAILABLE = -32002
"""The upstream server could not be reached, or its connection closed mid call."""
FORBIDDEN = -32003
"""Refused by policy (a foreign ``Origin``, terms not accepted)."""
NOT_FOUND = -32004
"""An unknown or excluded server, or an unknown, expired or foreign session."""
UPSTREAM_TIMEOUT = -32008
"""The upstream did not answer within the server's ``timeout_s``."""
RESULT_TOO_LARGE = -32013
"""The upstream's answer is larger than ``mcp.max_result_bytes``."""
RATE_LIMITED = -32029
"""A tool-call rate limit is exhausted."""
MISDIRECTED = -32021
"""The ``Host`` header is not one the gateway serves."""

STATUS = {
    PARSE_ERROR: 400,
    INVALID_REQUEST: 400,
    INVALID_PARAMS: 400,
    UNAUTHORIZED: 401,
    FORBIDDEN: 403,
    NOT_FOUND: 404,
    MISDIRECTED: 421,
    RATE_LIMITED: 429,
    INTERNAL_ERROR: 500,
    UPSTREAM_UNAVAILABLE: 502,
    RESULT_TOO_LARGE: 502,
    UPSTREAM_TIMEOUT: 504,
}


def status_of(code: int | None) -> int:
    """The HTTP status a JSON-RPC error code stands for (200 for success)."""
    if code is None:
        return 200
    return STATUS.get(code, 502)


def rpc_error(code: int, message: str) -> McpError:
    return McpError(ErrorData(code=code, message=message))
