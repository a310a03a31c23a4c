"""Codecs: how Python values become Baton payloads and back.

Queue items, future results and task payloads/results travel as bytes (with a
`text` twin for UTF-8 payloads, which grpcurl and other languages read
easily). A codec turns a value into (data, text) for a request, and the bytes
of a reply back into a value:

  RAW   (the default) sends str as text and bytes as data; returns bytes.
  TEXT  sends str as text (bytes as data); returns str (UTF-8).
  JSON  sends json.dumps(value) as text; returns json.loads(...) (None for an
        empty payload).

Choose one per client (`baton.connect(addr, codec=baton.TEXT)`) or per
queue, future, task or worker (`client.queue("jobs", codec=baton.JSON)`).
"""

from __future__ import annotations

import json
from typing import Any, Optional, Protocol


class Codec(Protocol):
    """Encodes values for requests and decodes payloads of replies."""

    name: str

    def encode(self, value: Any) -> tuple[Optional[bytes], Optional[str]]:
        """Returns (data, text): exactly one of them is not None."""
        ...

    def decode(self, data: bytes) -> Any:
        ...


def _bytes_or_text(value: Any) -> tuple[Optional[bytes], Optional[str]]:
    if isinstance(value, str):
        return None, value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value), None
    raise TypeError(
        f"cannot send a {type(value).__name__}: give str or bytes, or use codec=baton.JSON"
    )


class _Raw:
    name = "raw"

    def encode(self, value: Any) -> tuple[Optional[bytes], Optional[str]]:
        return _bytes_or_text(value)

    def decode(self, data: bytes) -> Any:
        return data


class _Text:
    name = "text"

    def encode(self, value: Any) -> tuple[Optional[bytes], Optional[str]]:
        return _bytes_or_text(value)

    def decode(self, data: bytes) -> Any:
        return data.decode("utf-8")


class _Json:
    name = "json"

    def encode(self, value: Any) -> tuple[Optional[bytes], Optional[str]]:
        return None, json.dumps(value, separators=(",", ":"))

    def decode(self, data: bytes) -> Any:
        return json.loads(data) if data else None


RAW: Codec = _Raw()
TEXT: Codec = _Text()
JSON: Codec = _Json()


def payload_bytes(data: bytes, text: str) -> bytes:
    """The payload of a reply that has a bytes field and a text twin."""
    return data if data else text.encode("utf-8")
