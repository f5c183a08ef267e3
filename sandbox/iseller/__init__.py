"""iSeller sandbox: a local, seeded stand-in for the iSeller point-of-sale API.

Start it with ``python -m sandbox.iseller --port 8182 --seed 42`` or build it in-process with
:func:`create_app`. What comes from public facts and what is assumed is listed in ``README.md``
next to this file and in each module's docstring.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
