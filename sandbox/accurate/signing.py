"""Accurate API-token signing: the client helper and the server-side check.

Public facts (reference doc): every call carries ``Authorization: Bearer <token>``,
``X-Api-Timestamp`` (``dd/MM/yyyy HH:mm:ss``, ISO-8601, or Unix seconds/millis) and
``X-Api-Signature`` = HMAC-SHA256 of the exact timestamp string keyed with the app's signature
secret, Base64 (hex also accepted); a timestamp more than 600 s from the server clock is refused.

Assumptions (the public record is silent):
- ``dd/MM/yyyy HH:mm:ss`` is Asia/Jakarta wall time;
- an ISO-8601 timestamp without offset is UTC;
- a purely numeric timestamp of 12 digits or more is Unix milliseconds, otherwise Unix seconds
  (a fraction is allowed);
- Base64 may be standard or URL-safe, with or without padding; hex is case-insensitive.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from datetime import UTC, datetime

from sandbox.accurate.clock import JAKARTA, TIMESTAMP_FORMAT

#: Timestamp formats ``make_headers`` can produce.
TIMESTAMP_FORMATS = ("local", "iso", "iso_utc", "iso_naive", "unix", "millis")
MAX_SKEW_SECONDS = 600


def sign(secret: str, timestamp: str, encoding: str = "base64") -> str:
    """HMAC-SHA256 of ``timestamp`` keyed with ``secret``, as Base64 (default) or hex."""
    digest = hmac.new(secret.encode(), timestamp.encode(), hashlib.sha256).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def format_timestamp_for(moment: float, timestamp_format: str) -> str:
    """Render Unix time ``moment`` in one of :data:`TIMESTAMP_FORMATS`."""
    if timestamp_format == "local":
        return datetime.fromtimestamp(moment, JAKARTA).strftime(TIMESTAMP_FORMAT)
    if timestamp_format == "iso":
        return datetime.fromtimestamp(moment, JAKARTA).isoformat(timespec="seconds")
    if timestamp_format == "iso_utc":
        return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if timestamp_format == "iso_naive":
        return datetime.fromtimestamp(moment, UTC).replace(tzinfo=None).isoformat(timespec="seconds")
    if timestamp_format == "unix":
        return str(int(moment))
    if timestamp_format == "millis":
        return str(int(moment * 1000))
    raise ValueError(f"unknown timestamp format {timestamp_format!r}; use one of {TIMESTAMP_FORMATS}")


def make_headers(
    token: str = "sandbox-api-token",
    secret: str = "sandbox-signature-secret",
    timestamp_format: str = "local",
    *,
    encoding: str = "base64",
    now: float | None = None,
    language: str | None = None,
) -> dict[str, str]:
    """The three signed headers of an Accurate API-token call (plus ``X-Language-Profile``).

    ``now`` is Unix time (default: the real clock); pass the sandbox clock's time after moving it.
    """
    timestamp = format_timestamp_for(time.time() if now is None else now, timestamp_format)
    headers = {
        "Authorization": f"Bearer {token}",
        "X-Api-Timestamp": timestamp,
        "X-Api-Signature": sign(secret, timestamp, encoding),
    }
    if language:
        headers["X-Language-Profile"] = language
    return headers


def parse_api_timestamp(text: str) -> float | None:
    """Unix seconds of an ``X-Api-Timestamp`` value, or ``None`` when no accepted format matches."""
    text = text.strip()
    if not text:
        return None
    if text[0].isdigit() and text.replace(".", "", 1).isdigit():
        try:
            value = float(text)
        except ValueError:
            return None
        integer_digits = len(text.split(".", 1)[0])
        return value / 1000 if integer_digits >= 12 else value
    if len(text) == 19 and text[2] == "/" and text[5] == "/":
        try:
            return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=JAKARTA).timestamp()
        except ValueError:
            return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class SignatureVerifier:
    """Checks one signature secret against ``X-Api-Signature`` values (Base64 or hex)."""

    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    def verify(self, timestamp: str, signature: str) -> bool:
        """True when ``signature`` is the HMAC of ``timestamp`` in any accepted encoding."""
        expected = hmac.new(self._key, timestamp.encode(), hashlib.sha256).digest()
        signature = signature.strip()
        if len(signature) == 64:
            try:
                return hmac.compare_digest(bytes.fromhex(signature), expected)
            except ValueError:
                pass
        padded = signature + "=" * (-len(signature) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                if hmac.compare_digest(decode(padded), expected):
                    return True
            except (binascii.Error, ValueError):
                continue
        return False
