"""JSON in and out: amounts are ``Decimal`` inside and plain JSON numbers outside.

Uses ``msgspec`` (pinned in requirements.txt) because it decodes floats straight into ``Decimal``
(the equivalent of ``json.loads(parse_float=Decimal)``) and writes ``Decimal`` as JSON numbers,
several times faster than the standard library on the 100-invoice bulk path.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

_encoder = msgspec.json.Encoder(decimal_format="number")
_decoder = msgspec.json.Decoder(float_hook=Decimal)


def encode(value: Any) -> bytes:
    """Serialise ``value`` (Decimal written as a number)."""
    return _encoder.encode(value)


def decode(data: bytes | str) -> Any:
    """Parse JSON, floats as ``Decimal``; raises ``ValueError`` on malformed input."""
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as error:
        raise ValueError(str(error)) from None
