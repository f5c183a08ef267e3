"""Accurate Online sandbox: a local, faithful stand-in for Accurate's account and data hosts.

Start it with ``python -m sandbox.accurate --port 8181 --seed 42`` or build the app in-process with
:func:`create_app`. See ``sandbox/accurate/README.md`` for what is public fact and what is assumed.
"""

from __future__ import annotations

from sandbox.accurate.app import (
    DEFAULT_API_TOKEN,
    DEFAULT_SEED,
    DEFAULT_SIGNATURE_SECRET,
    Sandbox,
    create_app,
)
from sandbox.accurate.signing import make_headers, sign

__all__ = [
    "DEFAULT_API_TOKEN",
    "DEFAULT_SEED",
    "DEFAULT_SIGNATURE_SECRET",
    "Sandbox",
    "create_app",
    "make_headers",
    "sign",
]
