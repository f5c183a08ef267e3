"""Command line: ``python -m sandbox.accurate --port 8181 --seed 42 [--host 127.0.0.1]``.

Defaults come from the environment: ``ACCURATE_SANDBOX_PORT`` (8181), ``ACCURATE_SANDBOX_HOST``
(127.0.0.1), ``ACCURATE_SANDBOX_SEED`` (42), ``ACCURATE_API_TOKEN`` (``sandbox-api-token``) and
``ACCURATE_SIGNATURE_SECRET`` (``sandbox-signature-secret``).
"""

from __future__ import annotations

import argparse
import os

import uvicorn

from sandbox.accurate.app import DEFAULT_API_TOKEN, DEFAULT_SEED, DEFAULT_SIGNATURE_SECRET, create_app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (environment variables give the defaults)."""
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m sandbox.accurate", description="Accurate Online sandbox")
    parser.add_argument("--host", default=env.get("ACCURATE_SANDBOX_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env.get("ACCURATE_SANDBOX_PORT", "8181")))
    parser.add_argument("--seed", type=int, default=int(env.get("ACCURATE_SANDBOX_SEED", str(DEFAULT_SEED))))
    parser.add_argument("--api-token", default=env.get("ACCURATE_API_TOKEN", DEFAULT_API_TOKEN))
    parser.add_argument(
        "--signature-secret", default=env.get("ACCURATE_SIGNATURE_SECRET", DEFAULT_SIGNATURE_SECRET)
    )
    parser.add_argument("--log-level", default=env.get("ACCURATE_SANDBOX_LOG_LEVEL", "warning"))
    parser.add_argument("--access-log", action="store_true", help="log every request (off by default)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the sandbox until interrupted."""
    args = parse_args(argv)
    app = create_app(seed=args.seed, api_token=args.api_token, signature_secret=args.signature_secret)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=args.access_log)


if __name__ == "__main__":
    main()
