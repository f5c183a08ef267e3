"""Static files of the operator pages (icons, style, script: no data, no login needed).

Served from ``web/static`` by Starlette's ``StaticFiles`` (path checks, ``ETag`` / ``304``, ``HEAD``)
under ``/integrations/operator/static/``. Only the kinds of file the pages use are served, each with
its fixed media type (not the host's MIME table) and a five-minute cache.
"""

from __future__ import annotations

import os
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

from include.iseller_accurate.web.shared import PAGES_PREFIX, STATIC_DIR

#: Where the plugin app mounts them (inside ``/integrations``).
MOUNT_PATH = f"{PAGES_PREFIX}/static"
MEDIA_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
CACHE_CONTROL = "public, max-age=300"


class OperatorStatic(StaticFiles):
    """``web/static`` (flat): ``.css``, ``.js`` and ``.svg`` files only, else 404."""

    def __init__(self) -> None:
        super().__init__(directory=STATIC_DIR)
        self._real_dir = os.path.realpath(STATIC_DIR)

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        path = os.fspath(full_path)
        media_type = MEDIA_TYPES.get(os.path.splitext(path)[1])
        if media_type is None or os.path.dirname(path) != self._real_dir:
            raise HTTPException(status_code=404, detail="no such file")
        response = FileResponse(
            path,
            status_code=status_code,
            stat_result=stat_result,
            media_type=media_type,
            headers={"Cache-Control": CACHE_CONTROL},
        )
        if self.is_not_modified(response.headers, Headers(scope=scope)):
            return NotModifiedResponse(response.headers)
        return response


def mount(app: Any) -> None:
    """Serve the static files on ``app`` (the plugin's FastAPI app)."""
    app.mount(MOUNT_PATH, OperatorStatic(), name="operator_static")
