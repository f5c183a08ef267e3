"""Run the iSeller sandbox: ``python -m sandbox.iseller --port 8182 --seed 42``."""

from __future__ import annotations

import argparse
import os

import uvicorn

from sandbox.demo_shop import DEFAULT_SEED

from .app import create_app
from .auth import DEFAULT_TOKEN_TTL


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; defaults come from the environment where the README names one."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.iseller", description="iSeller API sandbox")
    parser.add_argument("--host", default=os.environ.get("ISELLER_SANDBOX_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("ISELLER_SANDBOX_PORT", "8182")))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("ISELLER_SANDBOX_SEED", DEFAULT_SEED)))
    parser.add_argument(
        "--token-ttl",
        type=int,
        default=DEFAULT_TOKEN_TTL,
        help="access token lifetime in seconds (default 14 days)",
    )
    parser.add_argument("--client-id", default=None, help="default: $ISELLER_CLIENT_ID or sandbox-client")
    parser.add_argument(
        "--client-secret", default=None, help="default: $ISELLER_CLIENT_SECRET or sandbox-secret"
    )
    parser.add_argument(
        "--resource-url",
        default=os.environ.get("ISELLER_SANDBOX_RESOURCE_URL"),
        help="base URL answered as resource_url (default: the request's own)",
    )
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Start the server in the foreground."""
    args = parse_args(argv)
    app = create_app(
        seed=args.seed,
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_ttl=args.token_ttl,
        resource_url=args.resource_url,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
