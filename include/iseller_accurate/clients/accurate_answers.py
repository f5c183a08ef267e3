"""Reading Accurate's answers: the messages of a refusal, where host discovery names the data host, and
whether a redirect target is the same site (pure functions, no I/O)."""

from __future__ import annotations

import builtins
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from include.iseller_accurate.clients._hook import normalise_url

#: Where public material puts the database in the ``api-token.do`` answer, in the order tried.
DISCOVERY_KEYS = ("data usaha", "database")


def messages_of(value: Any) -> builtins.list[str]:
    """Accurate's ``d`` of a refusal or confirmation as a list of strings (it may be a list, str or dict)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, Mapping):
        return [f"{k}: {v}" if not isinstance(k, int) else str(v) for k, v in value.items()]
    if isinstance(value, Iterable):
        out: builtins.list[str] = []
        for item in value:
            out.extend(messages_of(item))
        return out
    return [str(value)]


def reason_of(body: Mapping[str, Any]) -> str:
    """The messages of a refusal (``s: false``) as one line."""
    return "; ".join(messages_of(body.get("d"))) or "no reason given"


def as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def discovered_database(answer: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The data host and database of an ``api-token.do`` ``d``, wherever public material puts them.

    ``d["data usaha"].host`` (Accurate's guide), ``d.database.host`` (most public clients) or a top-level
    ``d.host``; ``("", {})`` when none holds a host.
    """
    for key in DISCOVERY_KEYS:
        database = as_mapping(answer.get(key))
        if database.get("host"):
            return normalise_url(database["host"]), dict(database)
    if answer.get("host") and not isinstance(answer.get("host"), Mapping):
        return normalise_url(answer["host"]), {k: v for k, v in answer.items() if k != "user"}
    return "", {}


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    return True


def same_site(known: str, target: str) -> bool:
    """``target`` is the same host as ``known``, or shares its parent domain (zeus -> hera.accurate.id)."""
    if known == target:
        return True
    if _is_ip(known) or _is_ip(target):
        return False
    parent = ".".join(known.split(".")[-2:])
    return target == parent or target.endswith("." + parent)
