"""Reading request bodies from outside without trusting their size or type (both webhook receivers).

A body is refused *before* it is read when its ``Content-Length`` is over the limit, and reading stops
as soon as a body without one (chunked) passes the limit: one anonymous request can never make the
API server hold more than ``limit`` bytes of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

#: Bytes of a refused body kept for the audit row / log line.
EXCERPT_BYTES = 512


@dataclass(frozen=True)
class LimitedBody:
    """A body read up to a limit: all of it, or (too large) at most its first bytes."""

    data: bytes
    size: int | None  # bytes seen, or declared by Content-Length; None when unknown
    too_large: bool


def declared_length(request: Request) -> int | None:
    """The ``Content-Length`` header as a number, None when absent or not a number."""
    declared = request.headers.get("content-length", "").strip()
    return int(declared) if declared.isdigit() else None


async def read_limited(request: Request, limit: int) -> LimitedBody:
    """The body, or ``too_large`` without reading it (Content-Length) or once more than ``limit`` came."""
    declared = declared_length(request)
    if declared is not None and declared > limit:
        return LimitedBody(b"", declared, True)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        chunks.append(chunk)
        if size > limit:
            return LimitedBody(b"".join(chunks)[:EXCERPT_BYTES], size, True)
    return LimitedBody(b"".join(chunks), size, False)


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json`` (lower case; empty when absent)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json_type(content_type: str | None) -> bool:
    """``application/json`` or ``application/<something>+json``."""
    media = media_type(content_type)
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))
