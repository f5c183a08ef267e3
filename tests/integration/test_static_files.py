"""The operator pages' static files, served by the plugin's app mounted as Airflow mounts it.

No login, the media type of each kind of file (not the host's MIME table), a five-minute cache, the
file's exact bytes, and nothing outside ``web/static`` (the same checks against the real API server
are in test_pages_stack.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import include.iseller_accurate.web as web

STATIC = Path(web.__file__).parent / "static"
MEDIA_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
URL = "/integrations/operator/static"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    from plugins.iseller_accurate_plugin import integrations

    root = FastAPI()
    root.mount("/integrations", integrations)
    with TestClient(root, follow_redirects=False) as test_client:
        yield test_client


@pytest.mark.parametrize("name", sorted(path.name for path in STATIC.iterdir()))
def test_each_static_file_is_served_without_login(client: TestClient, name: str) -> None:
    resp = client.get(f"{URL}/{name}")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == MEDIA_TYPES[Path(name).suffix]
    assert resp.headers["cache-control"] == "public, max-age=300"
    assert resp.content == (STATIC / name).read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "..%2Fpages.py",
        "..%2Ftemplates%2Fbase.html",
        "..%2F..%2Fweb%2Fpages.py",
        "nothing.css",
        "pages.py",
        "",
    ],
)
def test_nothing_else_is_served(client: TestClient, path: str) -> None:
    resp = client.get(f"{URL}/{path}")
    assert resp.status_code == 404
    assert b"import" not in resp.content and b"<html" not in resp.content
