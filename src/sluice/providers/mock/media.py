"""The mock's media answers, deterministic and offline: speech audio, transcripts, images,
rerank scores and moderation verdicts, each derived from the request alone.

* Speech is a real audio file: a PCM WAV (``wav``), raw 16-bit PCM (``pcm``), or MPEG audio
  frames (``mp3``) whose samples come from the text; ``opus``, ``aac`` and ``flac`` carry their
  container's signature over the same samples (recognisable, not decodable). The WAV keeps
  the text in a ``sltx`` chunk, so transcribing the mock's speech gives the text back.
* A transcript of any other audio is made of words picked by the audio bytes' digest; its
  duration is the WAV header's, else the upload's size at 16 kbit/s.
* Images are valid PNG files of the requested size, coloured from the prompt's digest.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import struct
from typing import Any

import orjson

from sluice.providers.mock.caps import MockRequestError
from sluice.providers.mock.media_images import (
    MediaAnswer,
    images,
)
from sluice.types import Endpoint, UnitKind, Usage

SAMPLE_RATE = 8000
SECONDS_PER_CHAR = 0.06
"""Speech length per character of input (about 170 words a minute)."""
TEXT_CHUNK = b"sltx"
_WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "seven",
    "gateways",
    "route",
    "every",
    "request",
    "through",
    "careful",
    "limits",
    "and",
    "honest",
    "budgets",
    "to",
    "many",
    "patient",
    "providers",
]
_SPEECH_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
_TEXT_TYPES = {
    "text": "text/plain; charset=utf-8",
    "srt": "text/plain; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@functools.lru_cache(maxsize=64)
def _tone(freq: int) -> bytes:
    step = 2 * math.pi * freq / SAMPLE_RATE
    count = int(SAMPLE_RATE * SECONDS_PER_CHAR)
    return struct.pack(f"<{count}h", *(int(8000 * math.sin(step * i)) for i in range(count)))


def _samples(text: str) -> bytes:
    """16-bit mono PCM: a tone per character of ``text``, ``SECONDS_PER_CHAR`` each."""
    return b"".join(_tone(200 + (ord(ch) % 64) * 12) for ch in text or " ")


def _wav(pcm: bytes, text: str) -> bytes:
    note = text.encode()
    note_chunk = (
        TEXT_CHUNK + struct.pack("<I", len(note)) + note + (b"\0" if len(note) & 1 else b"")
    )
    fmt = struct.pack("<HHIIHH", 1, 1, SAMPLE_RATE, SAMPLE_RATE * 2, 2, 16)
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + note_chunk
        + b"data"
        + struct.pack("<I", len(pcm))
        + pcm
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _mp3(pcm: bytes) -> bytes:
    """MPEG-1 layer III frames (128 kbit/s, 44.1 kHz, 417 bytes each) over the samples."""
    header = b"\xff\xfb\x90\x64"
    size = 417 - len(header)
    frames = [header + pcm[i : i + size].ljust(size, b"\0") for i in range(0, len(pcm), size)]
    return b"".join(frames)


def speech(fields: dict[str, Any]) -> MediaAnswer:
    text = str(fields.get("input", ""))
    fmt = str(fields.get("response_format", "mp3"))
    if fmt not in _SPEECH_TYPES:
        raise MockRequestError(f"unsupported response_format {fmt!r}", param="response_format")
    pcm = _samples(text)
    audio = {
        "wav": lambda: _wav(pcm, text),
        "pcm": lambda: pcm,
        "mp3": lambda: _mp3(pcm),
        "opus": lambda: b"OggS\0\2" + pcm,
        "aac": lambda: b"\xff\xf1\x50\x80" + pcm,
        "flac": lambda: b"fLaC" + pcm,
    }[fmt]()
    return MediaAnswer(
        audio, _SPEECH_TYPES[fmt], Usage(units=len(text), unit_kind=UnitKind.CHARACTERS)
    )


def _wav_parts(data: bytes) -> tuple[float | None, str | None]:
    """A WAV's duration and the mock's text chunk, when it has them."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None, None
    pos, rate, text = 12, 0, None
    while pos + 8 <= len(data):
        tag = data[pos : pos + 4]
        size = int(struct.unpack_from("<I", data, pos + 4)[0])
        chunk = data[pos + 8 : pos + 8 + size]
        if tag == b"fmt " and len(chunk) >= 16:
            rate = int(struct.unpack_from("<I", chunk, 8)[0])
        elif tag == TEXT_CHUNK:
            text = chunk.decode("utf-8", "replace")
        elif tag == b"data" and rate > 0:
            return len(chunk) / rate, text
        pos += 8 + size + (size & 1)
    return None, text


def _heard(audio: bytes) -> tuple[str, float]:
    seconds, text = _wav_parts(audio)
    if seconds is None:
        seconds = max(1.0, len(audio) / 2000)
    if not text:
        digest = _digest(audio)
        count = 3 + digest[0] % 10
        text = " ".join(_WORDS[b % len(_WORDS)] for b in digest[1 : 1 + count]).capitalize()
        text += "."
    return text, round(seconds, 3)


def _segments(text: str, seconds: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    words = text.split() or [""]
    per_word = seconds / len(words)
    word_rows = [
        {"word": w, "start": round(i * per_word, 3), "end": round((i + 1) * per_word, 3)}
        for i, w in enumerate(words)
    ]
    segments = []
    for n, start in enumerate(range(0, len(words), 8)):
        part = words[start : start + 8]
        segments.append(
            {
                "id": n,
                "seek": 0,
                "start": word_rows[start]["start"],
                "end": word_rows[start + len(part) - 1]["end"],
                "text": " " + " ".join(part),
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": -0.1,
                "compression_ratio": 1.0,
                "no_speech_prob": 0.0,
            }
        )
    return segments, word_rows


def _clock(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _cues(segments: list[dict[str, Any]], *, vtt: bool) -> str:
    sep = "." if vtt else ","
    lines = ["WEBVTT", ""] if vtt else []
    for i, seg in enumerate(segments, 1):
        if not vtt:
            lines.append(str(i))
        lines.append(f"{_clock(seg['start'], sep)} --> {_clock(seg['end'], sep)}")
        lines.extend((seg["text"].strip(), ""))
    return "\n".join(lines) + "\n"


def transcript(endpoint: Endpoint, fields: dict[str, Any], audio: bytes | None) -> MediaAnswer:
    """A transcript (or translation) in the asked ``response_format``."""
    if not audio:
        raise MockRequestError("file is required", param="file")
    text, seconds = _heard(audio)
    fmt = str(fields.get("response_format", "json"))
    usage = Usage(units=seconds, unit_kind=UnitKind.AUDIO_SECONDS)
    duration = {"type": "duration", "seconds": math.ceil(seconds)}
    if fmt == "json":
        return MediaAnswer(orjson.dumps({"text": text, "usage": duration}), None, usage)
    if fmt == "text":
        return MediaAnswer((text + "\n").encode(), _TEXT_TYPES["text"], usage)
    segments, words = _segments(text, seconds)
    if fmt in ("srt", "vtt"):
        return MediaAnswer(_cues(segments, vtt=fmt == "vtt").encode(), _TEXT_TYPES[fmt], usage)
    if fmt != "verbose_json":
        raise MockRequestError(f"unsupported response_format {fmt!r}", param="response_format")
    grains = fields.get("timestamp_granularities[]") or fields.get("timestamp_granularities")
    grains = grains if isinstance(grains, list) else [grains] if grains else ["segment"]
    obj: dict[str, Any] = {
        "task": "translate" if endpoint is Endpoint.TRANSLATIONS else "transcribe",
        "language": "english",
        "duration": seconds,
        "text": text,
        "usage": duration,
    }
    if "segment" in grains:
        obj["segments"] = segments
    if "word" in grains:
        obj["words"] = words
    return MediaAnswer(orjson.dumps(obj), None, usage)


def transcript_events(fields: dict[str, Any], audio: bytes | None) -> tuple[list[bytes], Usage]:
    """A streamed transcript: one ``transcript.text.delta`` per word, then the done event."""
    if not audio:
        raise MockRequestError("file is required", param="file")
    text, seconds = _heard(audio)
    words = text.split(" ")
    events = [
        orjson.dumps({"type": "transcript.text.delta", "delta": (" " if i else "") + w})
        for i, w in enumerate(words)
    ]
    usage = {"type": "duration", "seconds": math.ceil(seconds)}
    events.append(orjson.dumps({"type": "transcript.text.done", "text": text, "usage": usage}))
    return events, Usage(units=seconds, unit_kind=UnitKind.AUDIO_SECONDS)


def _terms(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def rerank(fields: dict[str, Any], *, rid: str) -> MediaAnswer:
    """Documents scored by the share of the query's words they hold (ties broken by a
    digest), best first; Cohere's answer shape with Jina's ``usage``."""
    query = str(fields.get("query", ""))
    docs = fields.get("documents") or []
    wanted = _terms(query)
    scored = []
    tokens = len(query.split())
    for i, doc in enumerate(docs):
        text = str(doc.get("text", "") if isinstance(doc, dict) else doc)
        tokens += len(text.split())
        overlap = len(wanted & _terms(text)) / max(1, len(wanted))
        jitter = _digest(f"{query}|{text}".encode())[0] / 25500
        scored.append((round(min(1.0, 0.9 * overlap + jitter), 6), i, text))
    scored.sort(key=lambda row: (-row[0], row[1]))
    top = fields.get("top_n")
    if isinstance(top, int) and top > 0:
        scored = scored[:top]
    results = []
    for score, i, text in scored:
        row: dict[str, Any] = {"index": i, "relevance_score": score}
        if fields.get("return_documents"):
            row["document"] = {"text": text}
        results.append(row)
    searches = max(1, math.ceil(len(docs) / 100))
    obj = {
        "id": rid,
        "results": results,
        "meta": {"billed_units": {"search_units": searches}},
        "usage": {"total_tokens": tokens},
    }
    usage = Usage(tokens, units=searches, unit_kind=UnitKind.SEARCHES)
    return MediaAnswer(orjson.dumps(obj), None, usage)


def moderations(fields: dict[str, Any], *, rid: str) -> MediaAnswer:
    """Each input flagged for ``violence`` or ``hate`` when it holds one of a few words."""
    value = fields.get("input")
    inputs = value if isinstance(value, list) else [value]
    results = []
    for item in inputs:
        text = item if isinstance(item, str) else orjson.dumps(item).decode()
        words = _terms(text)
        hate = "hate" in words
        violence = bool(words & {"kill", "violence", "attack"})
        results.append(
            {
                "flagged": hate or violence,
                "categories": {"hate": hate, "violence": violence, "harassment": False},
                "category_scores": {
                    "hate": 0.91 if hate else 0.001,
                    "violence": 0.93 if violence else 0.001,
                    "harassment": 0.001,
                },
            }
        )
    obj = {"id": rid, "model": str(fields.get("model", "")), "results": results}
    return MediaAnswer(orjson.dumps(obj), None, Usage())


def answer(
    endpoint: Endpoint, fields: dict[str, Any], upload: bytes | None, *, rid: str, created: int
) -> MediaAnswer:
    """The mock's answer to one media request (``upload``: the form's file, if any)."""
    if endpoint is Endpoint.SPEECH:
        return speech(fields)
    if endpoint in (Endpoint.TRANSCRIPTIONS, Endpoint.TRANSLATIONS):
        return transcript(endpoint, fields, upload)
    if endpoint in (Endpoint.IMAGES, Endpoint.IMAGE_EDITS):
        return images(fields, upload or b"", created=created)
    if endpoint is Endpoint.RERANK:
        return rerank(fields, rid=rid)
    return moderations(fields, rid=rid)
