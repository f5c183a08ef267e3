"""The running sandbox's state holder (store, tokens, notifier), kept on ``app.state.sandbox``."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from .auth import TokenStore
from .notify import Notifier
from .store import IsellerStore
from .variants import Variants


@dataclass
class SandboxState:
    """Everything one sandbox server holds; ``store`` is replaced on reset."""

    store: IsellerStore
    tokens: TokenStore
    notifier: Notifier
    #: Fixed ``resource_url`` to answer; None means this server's own base URL from the request.
    resource_url: str | None = None
    #: Switches for the points the public doc leaves open (see :mod:`sandbox.iseller.variants`).
    variants: Variants = field(default_factory=Variants)

    def base_url(self, request: Request) -> str:
        """The ``resource_url`` for a token answer."""
        if self.resource_url:
            return self.resource_url.rstrip("/")
        return str(request.base_url).rstrip("/")


def sandbox_state(request: Request) -> SandboxState:
    """The sandbox state of the app serving ``request``."""
    state: SandboxState = request.app.state.sandbox
    return state
