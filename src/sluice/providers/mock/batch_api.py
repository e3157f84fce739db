"""The mock upstream's batch APIs: OpenAI Files + Batches (``POST /v1/files``,
``GET /v1/files/{id}/content``, ``POST /v1/batches``, ``GET /v1/batches`` (all, no paging),
``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``) and Anthropic Message Batches (``POST
/v1/messages/batches``, ``GET /v1/messages/batches/{id}``, ``GET .../results``, ``POST
.../cancel``). Each line is answered by the mock's own chat (or messages) logic, scripted by
its model name as a live call would be.

Scripts, as headers of the create request (a provider's ``headers`` in the gateway config):

- ``x-mock-batch-per-poll: N``: each status poll answers the next N lines (default: all of
  them at the first poll), so a batch stays in progress for a few polls;
- ``x-mock-batch-fail: 1``: the batch fails as a whole (OpenAI ``failed``, Anthropic: every
  line ``errored``).

A line whose last message contains ``mock_batch_line=fail`` is answered with a 400. State is
in memory (at most :data:`MAX_BATCHES` batches and files each; the oldest go first).
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import time
from email.message import EmailMessage
from typing import Any, Protocol

import orjson

from sluice.providers.mock import script as s
from sluice.providers.mock.reply import Reply, json_reply
from sluice.providers.mock.wire import Upstream, native_reply

MAX_BATCHES = 1000
LINE_FAILS = "mock_batch_line=fail"
_OPENAI_ENDED = ("completed", "failed", "cancelled", "expired")


class App(Upstream, Protocol):
    async def reply(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Reply: ...


def _error(status: int, message: str) -> Reply:
    return json_reply(
        status,
        s.error_body(status)
        | {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        },
    )


class MockBatchApi:
    """Batches of one mock upstream process."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._files: dict[str, bytes] = {}
        self._batches: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def _id(self, prefix: str) -> str:
        return f"{prefix}_mock{next(self._ids):06d}"

    def _keep(self, table: dict[str, Any], key: str, value: Any) -> None:
        table[key] = value
        while len(table) > MAX_BATCHES:
            table.pop(next(iter(table)))

    async def reply(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> Reply | None:
        """The answer for a batch API path, ``None`` for any other path."""
        parts = path.strip("/").split("/")
        if parts[:3] == ["v1", "messages", "batches"]:
            if not headers.get("x-api-key"):
                return json_reply(
                    401,
                    {
                        "type": "error",
                        "error": {
                            "type": "authentication_error",
                            "message": "x-api-key is required",
                        },
                    },
                )
            return await self._anthropic(method, parts[3:], headers, raw)
        if parts[:2] in (["v1", "files"], ["v1", "batches"]):
            if not headers.get("authorization", "").startswith("Bearer "):
                return _error(401, "a bearer token is required")
            if parts[1] == "files":
                return self._file(method, parts[2:], headers, raw)
            return await self._openai(method, parts[2:], headers, raw)
        return None

    # --- OpenAI ---------------------------------------------------------------------

    def _file(self, method: str, rest: list[str], headers: dict[str, str], raw: bytes) -> Reply:
        if method == "POST" and not rest:
            form = email.parser.BytesParser(EmailMessage, policy=email.policy.default).parsebytes(
                b"content-type: " + headers.get("content-type", "").encode() + b"\r\n\r\n" + raw
            )
            fields = {
                part.get_param("name", header="content-disposition"): part
                for part in form.iter_parts()
            }
            data = fields.get("file")
            purpose = fields.get("purpose")
            if data is None or purpose is None:
                return _error(400, "file and purpose are required")
            content = data.get_payload(decode=True)
            file_id = self._id("file")
            self._keep(self._files, file_id, content if isinstance(content, bytes) else b"")
            return json_reply(
                200,
                {
                    "id": file_id,
                    "object": "file",
                    "purpose": "batch",
                    "bytes": len(self._files[file_id]),
                },
            )
        if method == "GET" and len(rest) == 2 and rest[1] == "content" and rest[0] in self._files:
            return Reply(200, self._files[rest[0]], content_type="application/jsonl")
        return _error(404, "no such file")

    async def _openai(
        self, method: str, rest: list[str], headers: dict[str, str], raw: bytes
    ) -> Reply:
        if method == "POST" and not rest:
            body = orjson.loads(raw)
            data = self._files.get(str(body.get("input_file_id")))
            if data is None:
                return _error(400, "input_file_id: no such file")
            lines = [orjson.loads(x) for x in data.splitlines() if x.strip()]
            made = self._new("batch", headers, lines, endpoint=body.get("endpoint"))
            return json_reply(200, self._openai_view(made))
        if method == "GET" and not rest:  # every batch, oldest first (tests count them)
            views = [self._openai_view(b) for b in self._batches.values() if b["kind"] == "openai"]
            return json_reply(200, {"object": "list", "data": views, "has_more": False})
        batch = self._batches.get(rest[0]) if rest else None
        if batch is None or batch["kind"] != "openai":
            return _error(404, "no such batch")
        if method == "GET" and len(rest) == 1:
            await self._progress(batch)
        elif method == "POST" and rest[1:] == ["cancel"]:
            if batch["status"] == "in_progress":
                self._end(batch, "cancelled")
        else:
            return _error(404, "no such route")
        return json_reply(200, self._openai_view(batch))

    def _openai_view(self, batch: dict[str, Any]) -> dict[str, Any]:
        done = batch["answers"]
        failed = sum(1 for a in done if a["status"] >= 400)
        return {
            "id": batch["id"],
            "object": "batch",
            "endpoint": batch["endpoint"],
            "status": batch["status"],
            "output_file_id": batch.get("output_file_id"),
            "error_file_id": batch.get("error_file_id"),
            "errors": batch.get("errors"),
            "request_counts": {
                "total": len(batch["lines"]),
                "completed": len(done) - failed,
                "failed": failed,
            },
        }

    # --- Anthropic ------------------------------------------------------------------

    async def _anthropic(
        self, method: str, rest: list[str], headers: dict[str, str], raw: bytes
    ) -> Reply:
        if method == "POST" and not rest:
            requests = orjson.loads(raw).get("requests")
            if not isinstance(requests, list) or not requests:
                return _error(400, "requests: at least one is required")
            made = self._new("msgbatch", headers, requests, endpoint=None)
            return json_reply(200, self._anthropic_view(made, headers))
        batch = self._batches.get(rest[0]) if rest else None
        if batch is None or batch["kind"] != "anthropic":
            return _error(404, "no such message batch")
        if method == "GET" and len(rest) == 1:
            await self._progress(batch)
        elif method == "GET" and rest[1:] == ["results"] and batch["status"] == "ended":
            return Reply(200, self._anthropic_results(batch), content_type="application/x-jsonl")
        elif method == "POST" and rest[1:] == ["cancel"]:
            if batch["status"] == "in_progress":
                batch["status"] = "canceling"
        else:
            return _error(404, "no such route")
        return json_reply(200, self._anthropic_view(batch, headers))

    def _anthropic_view(self, batch: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        ended = batch["status"] == "ended"
        url = f"http://{headers.get('host', '127.0.0.1')}/v1/messages/batches/{batch['id']}"
        return {
            "id": batch["id"],
            "type": "message_batch",
            "processing_status": batch["status"],
            "results_url": url + "/results" if ended else None,
        }

    def _anthropic_results(self, batch: dict[str, Any]) -> bytes:
        out = []
        answered = {a["custom_id"]: a for a in batch["answers"]}
        for line in batch["lines"]:
            answer = answered.get(line["custom_id"])
            if answer is None:
                result: dict[str, Any] = {"type": "canceled"}
            elif answer["status"] < 400:
                result = {"type": "succeeded", "message": orjson.loads(answer["body"])}
            else:
                result = {"type": "errored", "error": orjson.loads(answer["body"])}
            out.append(orjson.dumps({"custom_id": line["custom_id"], "result": result}))
        return b"\n".join(out) + b"\n"

    # --- both -----------------------------------------------------------------------

    def _new(
        self, prefix: str, headers: dict[str, str], lines: list[Any], *, endpoint: Any
    ) -> dict[str, Any]:
        kind = "anthropic" if prefix == "msgbatch" else "openai"
        per_poll = int(headers.get("x-mock-batch-per-poll") or 0) or len(lines)
        batch = {
            "id": self._id(prefix),
            "kind": kind,
            "endpoint": endpoint,
            "lines": lines,
            "answers": [],
            "status": "in_progress",
            "per_poll": per_poll,
            "fail": headers.get("x-mock-batch-fail") == "1",
            "auth": {
                k: v
                for k, v in headers.items()
                if k in ("x-api-key", "anthropic-version", "authorization")
            },
            "created_at": int(time.time()),
        }
        self._keep(self._batches, str(batch["id"]), batch)
        return batch

    async def _progress(self, batch: dict[str, Any]) -> None:
        """A status poll: the next lines are answered; the batch ends once all are."""
        if batch["status"] == "canceling":
            batch["status"] = "ended"
            return
        if batch["status"] != "in_progress":
            return
        if batch["fail"] and batch["kind"] == "openai":
            batch["errors"] = {"data": [{"message": "mock upstream: the batch failed"}]}
            self._end(batch, "failed")
            return
        start = len(batch["answers"])
        for line in batch["lines"][start : start + batch["per_poll"]]:
            batch["answers"].append(await self._answer(batch, line))
        if len(batch["answers"]) == len(batch["lines"]):
            self._end(batch, "ended" if batch["kind"] == "anthropic" else "completed")

    async def _answer(self, batch: dict[str, Any], line: dict[str, Any]) -> dict[str, Any]:
        custom_id = str(line.get("custom_id"))
        anthropic = batch["kind"] == "anthropic"
        body = line.get("params" if anthropic else "body") or {}
        if batch["fail"] or LINE_FAILS in orjson.dumps(body.get("messages")).decode():
            status = 400
            if anthropic:
                answer = {
                    "type": "error",
                    "error": {
                        "type": "invalid_request_error",
                        "message": "mock upstream: this line fails",
                    },
                }
            else:
                answer = {
                    "error": {
                        "message": "mock upstream: this line fails",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": None,
                    }
                }
            return {"custom_id": custom_id, "status": status, "body": orjson.dumps(answer)}
        raw = orjson.dumps(body)
        if anthropic:
            reply = await native_reply(self._app, "/v1/messages", dict(batch["auth"]), raw)
            assert reply is not None
        else:
            url = str(line.get("url") or "/v1/chat/completions")
            reply = await self._app.reply("POST", url, {}, raw)
        data = reply.body
        if reply.stream is not None:
            data = b"".join([piece async for piece in reply.stream])
        return {"custom_id": custom_id, "status": reply.status, "body": data}

    def _end(self, batch: dict[str, Any], status: str) -> None:
        batch["status"] = status
        if batch["kind"] != "openai":
            return
        out: list[bytes] = []
        err: list[bytes] = []
        for answer in batch["answers"]:
            item = {
                "id": "batch_req_" + answer["custom_id"],
                "custom_id": answer["custom_id"],
                "response": {
                    "status_code": answer["status"],
                    "request_id": "mock",
                    "body": orjson.Fragment(answer["body"]),
                },
                "error": None,
            }
            (out if answer["status"] < 400 else err).append(orjson.dumps(item))
        for name, items in (("output_file_id", out), ("error_file_id", err)):
            if items:
                file_id = self._id("file")
                self._keep(self._files, file_id, b"\n".join(items) + b"\n")
                batch[name] = file_id
