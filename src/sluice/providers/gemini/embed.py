"""Embeddings: OpenAI ``/embeddings`` ↔ Gemini ``embedContent``/``batchEmbedContents``
(AI Studio) and Vertex AI ``predict``. Pure.

The task type (``RETRIEVAL_DOCUMENT``, ``SEMANTIC_SIMILARITY``, ...) may be given as an
extra ``task_type`` field of the OpenAI request.
"""

from __future__ import annotations

from typing import Any

from sluice.errors import ErrorKind, GatewayError
from sluice.providers.native import openai_in as oi
from sluice.types import Usage


def _options(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(body.get("dimensions"), int):
        out["outputDimensionality"] = body["dimensions"]
    if isinstance(body.get("task_type"), str):
        out["taskType"] = body["task_type"]
    return out


def studio_request(body: dict[str, Any], model_path: str) -> tuple[str, dict[str, Any]]:
    """``(method, body)``: ``embedContent`` for one text, ``batchEmbedContents`` for a list."""
    texts = oi.embedding_inputs(body)
    options = _options(body)
    if not isinstance(body.get("input"), list):
        return "embedContent", {"content": {"parts": [{"text": texts[0]}]}, **options}
    requests = [
        {"model": model_path, "content": {"parts": [{"text": t}]}, **options} for t in texts
    ]
    return "batchEmbedContents", {"requests": requests}


def _bad(what: str) -> GatewayError:
    return GatewayError(ErrorKind.PROVIDER_BAD_RESPONSE, f"the provider sent {what}")


def _values(obj: Any) -> list[float]:
    values = obj.get("values") if isinstance(obj, dict) else None
    if not isinstance(values, list):
        raise _bad("an embedding without values")
    return [float(v) for v in values]


def studio_response(data: dict[str, Any]) -> tuple[list[list[float]], Usage | None]:
    """AI Studio sends no token counts: usage is ``None`` and the gateway estimates."""
    if "embedding" in data:
        return [_values(data["embedding"])], None
    embeddings = data.get("embeddings")
    if not isinstance(embeddings, list):
        raise _bad("no embeddings")
    return [_values(e) for e in embeddings], None


def vertex_request(body: dict[str, Any]) -> dict[str, Any]:
    texts = oi.embedding_inputs(body)
    task = body.get("task_type")
    instances = [
        {"content": t, **({"task_type": task} if isinstance(task, str) else {})} for t in texts
    ]
    out: dict[str, Any] = {"instances": instances}
    if isinstance(body.get("dimensions"), int):
        out["parameters"] = {"outputDimensionality": body["dimensions"]}
    return out


def vertex_response(data: dict[str, Any]) -> tuple[list[list[float]], Usage | None]:
    predictions = data.get("predictions")
    if not isinstance(predictions, list):
        raise _bad("no predictions")
    vectors = []
    tokens = 0
    counted = False
    for prediction in predictions:
        emb = prediction.get("embeddings") if isinstance(prediction, dict) else None
        vectors.append(_values(emb))
        stats = emb.get("statistics") if isinstance(emb, dict) else None
        if isinstance(stats, dict) and isinstance(stats.get("token_count"), int | float):
            tokens += int(stats["token_count"])
            counted = True
    return vectors, Usage(prompt_tokens=tokens) if counted else None
