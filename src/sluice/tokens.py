"""Token estimates for when a provider reports no usage. Marked ``estimated`` on usage rows.

No tokenizer download happens at run time, so this is a character heuristic (about four
characters per token for English text), applied the same way to every provider.
"""

from __future__ import annotations

from typing import Any

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4


def estimate_text(chars: int) -> int:
    return 0 if chars <= 0 else (chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def _content_chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        total = 0
        for part in content:
            if isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    total += len(text)
                elif part.get("type") in ("image_url", "input_image", "image"):
                    total += 85 * CHARS_PER_TOKEN  # a low-detail image's flat token cost
        return total
    return 0


def estimate_prompt(body: dict[str, Any]) -> int:
    """Estimate the input tokens of a chat, completions or embeddings body."""
    messages = body.get("messages")
    if isinstance(messages, list):
        total = 0
        for message in messages:
            if isinstance(message, dict):
                total += MESSAGE_OVERHEAD_TOKENS + estimate_text(
                    _content_chars(message.get("content"))
                )
        return total
    for field in ("prompt", "input"):
        value = body.get(field)
        if isinstance(value, str):
            return estimate_text(len(value))
        if isinstance(value, list):
            return sum(
                estimate_text(len(v))
                if isinstance(v, str)
                else len(v)
                if isinstance(v, list)
                else 0
                for v in value
            )
    return 0
