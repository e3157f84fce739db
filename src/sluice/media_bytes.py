"""What uploaded media is, read from its first bytes: the audio and image containers the
OpenAI audio and image endpoints accept, and a WAV file's exact duration.

Nothing is decoded: a file is recognised by its container's signature, which is enough to
refuse a corrupt or mislabelled upload before it reaches (and is billed by) a provider.
"""

from __future__ import annotations

import struct

AUDIO_FORMATS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
"""The audio formats ``/v1/audio/transcriptions`` accepts (OpenAI's list)."""
IMAGE_FORMATS = ("png", "jpeg", "webp")


def sniff_audio(data: bytes) -> str | None:
    """The audio container of ``data`` (``wav``, ``mp3``, ``flac``, ``ogg``, ``webm``,
    ``mp4``), or ``None`` when it is none of them (or a WAV file whose header is broken)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav" if wav_seconds(data) is not None else None
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "mp3"
    if data[:4] == b"fLaC":
        return "flac"
    if data[:4] == b"OggS":
        return "ogg"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if data[4:8] == b"ftyp":
        return "mp4"
    return None


def wav_seconds(data: bytes) -> float | None:
    """The duration of a PCM WAV file from its header (``None`` when the header is not a
    readable RIFF/WAVE with ``fmt`` and ``data`` chunks)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos = 12
    byte_rate = 0
    while pos + 8 <= len(data):
        tag = data[pos : pos + 4]
        size = int(struct.unpack_from("<I", data, pos + 4)[0])
        body = pos + 8
        if tag == b"fmt ":
            if size < 16 or body + 16 > len(data):
                return None
            byte_rate = int(struct.unpack_from("<I", data, body + 8)[0])
        elif tag == b"data":
            if byte_rate <= 0:
                return None
            available = min(size, len(data) - body)
            return available / byte_rate
        pos = body + size + (size & 1)
    return None


def sniff_image(data: bytes) -> str | None:
    """``png``, ``jpeg`` or ``webp`` from the signature; ``None`` otherwise."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None
