"""Embeddings on Bedrock through ``InvokeModel``, whose body is the model family's own:
Amazon Titan Text Embeddings (one text per call) and Cohere Embed (a list per call). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluice.errors import ErrorKind, GatewayError
from sluice.providers.native import openai_in as oi
from sluice.types import Usage

TOKEN_HEADER = "X-Amzn-Bedrock-Input-Token-Count"


def family(model: str) -> str:
    """``titan`` or ``cohere``, from the model id (inference-profile prefixes allowed)."""
    if "amazon.titan-embed" in model:
        return "titan"
    if "cohere.embed" in model:
        return "cohere"
    raise oi.unsupported(
        f"embeddings on Bedrock support Amazon Titan and Cohere Embed models, not {model!r}",
        param="model",
    )


def titan_requests(body: dict[str, Any]) -> list[dict[str, Any]]:
    """One InvokeModel body per input text."""
    extra: dict[str, Any] = {}
    if isinstance(body.get("dimensions"), int):
        extra["dimensions"] = body["dimensions"]
    return [{"inputText": text, **extra} for text in oi.embedding_inputs(body)]


def _bad(what: str) -> GatewayError:
    return GatewayError(ErrorKind.PROVIDER_BAD_RESPONSE, f"the provider sent {what}")


def titan_response(data: dict[str, Any]) -> tuple[list[float], int]:
    vector = data.get("embedding")
    if not isinstance(vector, list):
        raise _bad("no embedding")
    tokens = data.get("inputTextTokenCount")
    return [float(v) for v in vector], tokens if isinstance(tokens, int) else 0


def cohere_request(body: dict[str, Any]) -> dict[str, Any]:
    input_type = body.get("input_type")
    out: dict[str, Any] = {
        "texts": oi.embedding_inputs(body),
        "input_type": input_type if isinstance(input_type, str) else "search_document",
        "embedding_types": ["float"],
    }
    if isinstance(body.get("dimensions"), int):
        out["output_dimension"] = body["dimensions"]
    return out


def cohere_response(
    data: dict[str, Any], headers: Mapping[str, str]
) -> tuple[list[list[float]], Usage | None]:
    """Cohere on Bedrock reports input tokens in a response header, not the body."""
    embeddings = data.get("embeddings")
    if isinstance(embeddings, dict):
        embeddings = embeddings.get("float")
    if not isinstance(embeddings, list):
        raise _bad("no embeddings")
    raw = headers.get(TOKEN_HEADER)
    usage = Usage(prompt_tokens=int(raw)) if raw and raw.isdigit() else None
    return [[float(v) for v in e] for e in embeddings], usage
