"""The iSeller sandbox application factory."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI

from sandbox.demo_shop import DEFAULT_SEED

from .api import register_api
from .auth import DEFAULT_TOKEN_TTL, TokenStore
from .context import SandboxState
from .control import EXCEPTION_HANDLERS, router
from .notify import Notifier
from .store import IsellerStore, utc_now

DEFAULT_CLIENT_ID = "sandbox-client"
DEFAULT_CLIENT_SECRET = "sandbox-secret"


def create_app(
    seed: int = DEFAULT_SEED,
    client_id: str | None = None,
    client_secret: str | None = None,
    token_ttl: int = DEFAULT_TOKEN_TTL,
    resource_url: str | None = None,
    clock: Callable[[], datetime] = utc_now,
    variants: dict[str, Any] | None = None,
) -> FastAPI:
    """Build the iSeller sandbox for ``seed``.

    Client credentials default to ``ISELLER_CLIENT_ID``/``ISELLER_CLIENT_SECRET`` or
    ``sandbox-client``/``sandbox-secret``; ``resource_url`` (default: the request's own base URL)
    is what the token endpoint answers as the store's base URL. ``variants`` sets switches of
    :mod:`sandbox.iseller.variants` (also ``POST /_sandbox/variants``).
    """
    state = SandboxState(
        store=IsellerStore(seed, clock=clock),
        tokens=TokenStore(
            client_id or os.environ.get("ISELLER_CLIENT_ID", DEFAULT_CLIENT_ID),
            client_secret or os.environ.get("ISELLER_CLIENT_SECRET", DEFAULT_CLIENT_SECRET),
            ttl_seconds=token_ttl,
        ),
        notifier=Notifier(),
        resource_url=resource_url,
    )
    if variants:
        state.variants.update(dict(variants))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await state.notifier.stop()

    app = FastAPI(
        title="iSeller sandbox",
        description="A local stand-in for the iSeller API (see sandbox/iseller/README.md).",
        lifespan=lifespan,
    )
    app.state.sandbox = state
    register_api(app)
    app.include_router(router)
    for error_type, handler in EXCEPTION_HANDLERS.items():
        app.add_exception_handler(error_type, handler)
    return app
