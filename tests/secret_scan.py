"""Looks for configured secrets in text, files and PostgreSQL databases (the secret-leak scan).

Used by tests/e2e/test_zz_secret_scan_e2e.py against the running stack, and tested on its own by
tests/unit/test_secret_scan.py (a planted secret must be reported, with where it was found).

A secret is looked for in every form it could take on its way into a log line or a row:

- as is, URL-encoded (``%2F`` and ``+`` styles) and JSON-escaped;
- Base64 (standard and URL-safe alphabets), also when it is only part of a longer encoded value
  (``Basic base64(user:password)``): the characters that depend on the secret alone are looked for,
  at each of the three byte alignments;
- hex of its bytes.

Besides the known values, any ``Authorization: Bearer|Basic <value>`` that is not redacted is
reported: a header dumped into a log is a leak whatever token it carries.

Findings never repeat the secret: the excerpt shows ``<NAME>`` in its place.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import psycopg
from psycopg import sql

#: Shorter values (or encoded fragments) match too much ordinary text to mean anything.
MIN_LENGTH = 8
#: Characters of context on each side of a finding.
CONTEXT = 60
#: Header values that are redactions, not tokens.
REDACTED_VALUES = frozenset({"***", "<redacted>", "[redacted]", "redacted", "xxx", "****"})

_AUTH_HEADER = re.compile(
    r"""(?i)\bauthorization\b["']?\s*[:=,]\s*["']?(bearer|basic)\s+([A-Za-z0-9._~+/=-]{8,})"""
)

#: PostgreSQL types whose values are scanned (as text; bytea decoded, zlib-inflated when possible).
TEXT_TYPES = frozenset({"text", "character varying", "character", "json", "jsonb", "xml", "bytea", "ARRAY"})


@dataclass(frozen=True)
class Secret:
    """A configured secret: a name for reports (never the value) and the value."""

    name: str
    value: str = field(repr=False)


@dataclass(frozen=True)
class Finding:
    """Where a secret (or an unredacted Authorization header) was found."""

    secret: str  # the secret's name, or "Authorization header"
    form: str  # plain, url, base64, ...
    location: str  # file:line, db.schema.table.column[key], page URL, ...
    excerpt: str  # the context, the secret replaced by <NAME>

    def __str__(self) -> str:
        return f"{self.secret} ({self.form}) in {self.location}: {self.excerpt}"


def _base64_fragments(raw: bytes) -> dict[str, str]:
    """The Base64 characters determined by ``raw`` alone, at each byte alignment within a longer value."""
    out: dict[str, str] = {}
    n = len(raw)
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw + b"\0\0").decode("ascii")
        start = -(-8 * offset // 6)  # first character whose 6 bits all come from raw
        end = (8 * offset + 8 * n) // 6  # past the last one
        fragment = encoded[start:end]
        out[f"base64@{offset}"] = fragment
        out[f"base64url@{offset}"] = fragment.replace("+", "-").replace("/", "_")
    return out


def forms_of(value: str) -> dict[str, str]:
    """``{form name: text}`` of every form of ``value`` that is long enough to look for."""
    raw = value.encode("utf-8")
    candidates = {
        "plain": value,
        "url": quote(value, safe=""),
        "url+": quote_plus(value),
        "json": json.dumps(value)[1:-1],
        "hex": raw.hex(),
        **_base64_fragments(raw),
    }
    out: dict[str, str] = {}
    seen: set[str] = set()
    for name, text in candidates.items():
        if len(text) >= MIN_LENGTH and text not in seen:
            seen.add(text)
            out[name] = text
    return out


@dataclass
class ScanStats:
    """What a scan looked at (for the report)."""

    files: int = 0
    file_bytes: int = 0
    texts: int = 0
    tables: int = 0
    columns: int = 0
    rows: int = 0
    cells: int = 0
    by_source: dict[str, int] = field(default_factory=dict)

    def count(self, source: str, n: int = 1) -> None:
        self.by_source[source] = self.by_source.get(source, 0) + n


class SecretScanner:
    """Collects findings of ``secrets`` (and of unredacted Authorization headers) across sources."""

    def __init__(self, secrets: Iterable[Secret]) -> None:
        self.secrets: list[Secret] = []
        self.skipped: list[str] = []
        self._needles: dict[str, tuple[str, str]] = {}  # text -> (secret name, form)
        for secret in secrets:
            if len(secret.value) < MIN_LENGTH:
                self.skipped.append(secret.name)
                continue
            self.secrets.append(secret)
            for form, text in forms_of(secret.value).items():
                self._needles.setdefault(text, (secret.name, form))
        alternatives = sorted(self._needles, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, alternatives))) if alternatives else None
        self.findings: list[Finding] = []
        self.stats = ScanStats()

    # -- text -----------------------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: f"<{self._needles[m.group(0)][0]}>", text)

    def _excerpt(self, text: str, start: int, end: int) -> str:
        # Redact before cutting, so that no part of a secret survives at the edges of the excerpt.
        before = self._redact(text[:start])[-CONTEXT:]
        middle = self._redact(text[start:end])
        after = self._redact(text[end:])[:CONTEXT]
        return " ".join(f"{before}{middle}{after}".split())

    def scan_text(self, text: str, location: str) -> list[Finding]:
        """Findings in ``text`` (also recorded on the scanner)."""
        found: list[Finding] = []
        spans: list[tuple[int, int]] = []
        self.stats.texts += 1
        if self._pattern is not None:
            for match in self._pattern.finditer(text):
                spans.append(match.span())
                name, form = self._needles[match.group(0)]
                found.append(Finding(name, form, location, self._excerpt(text, match.start(), match.end())))
        for match in _AUTH_HEADER.finditer(text):
            value = match.group(2)
            if value.strip("'\"").lower() in REDACTED_VALUES or set(value) <= {"*"}:
                continue
            if any(start <= match.start(2) < end for start, end in spans):
                continue  # a known secret: reported above by name
            shown = text[: match.start(2)] + "<value>" + text[match.end(2) :]
            found.append(
                Finding(
                    "Authorization header",
                    match.group(1).lower(),
                    location,
                    self._excerpt(shown, match.start(), match.start(2) + len("<value>")),
                )
            )
        self.findings.extend(found)
        return found

    # -- files ----------------------------------------------------------------------------------------
    def scan_file(self, path: Path, label: str | None = None) -> list[Finding]:
        """Findings in one file, located as ``file:line``."""
        data = path.read_bytes()
        self.stats.files += 1
        self.stats.file_bytes += len(data)
        found: list[Finding] = []
        shown = label or str(path)
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
            if self._could_match(line):
                found.extend(self.scan_text(line, f"{shown}:{number}"))
        return found

    def _could_match(self, line: str) -> bool:
        if "authorization" in line.lower():
            return True
        return self._pattern is not None and self._pattern.search(line) is not None

    def scan_tree(self, root: Path, exclude: Iterable[Path] = ()) -> list[Path]:
        """Scan each regular file under ``root`` (symlinks followed) but ``exclude``; the files scanned."""
        skip = {p.resolve() for p in exclude}
        scanned: list[Path] = []
        for path in sorted(_walk(root)):
            if path.resolve() in skip:
                continue
            self.scan_file(path)
            scanned.append(path)
        return scanned

    # -- databases ------------------------------------------------------------------------------------
    def scan_database(self, conn: psycopg.Connection[Any], label: str) -> None:
        """Scan every text, character, JSON, XML, array and bytea column of every user table."""
        columns = conn.execute(
            """
            SELECT c.table_schema, c.table_name, c.column_name, c.data_type
              FROM information_schema.columns c
              JOIN information_schema.tables t
                ON t.table_schema = c.table_schema AND t.table_name = c.table_name
             WHERE t.table_type = 'BASE TABLE'
               AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
               AND c.table_schema NOT LIKE 'pg_toast%%'
             ORDER BY c.table_schema, c.table_name, c.ordinal_position
            """
        ).fetchall()
        tables: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for schema, table, column, data_type in columns:
            tables.setdefault((schema, table), [])
            if data_type in TEXT_TYPES:
                tables[(schema, table)].append((column, data_type))
        for (schema, table), text_columns in tables.items():
            self.stats.tables += 1
            self.stats.columns += len(text_columns)
            rows = self._scan_table(conn, label, schema, table, text_columns)
            self.stats.count(f"{label} rows", rows)

    def _scan_table(
        self,
        conn: psycopg.Connection[Any],
        label: str,
        schema: str,
        table: str,
        text_columns: list[tuple[str, str]],
    ) -> int:
        key = _primary_key(conn, schema, table)
        selected: list[sql.Composable] = [sql.SQL("ctid::text")]
        selected += [sql.Identifier(k) for k in key]
        for column, data_type in text_columns:
            ident = sql.Identifier(column)
            selected.append(ident if data_type == "bytea" else sql.SQL("{}::text").format(ident))
        query = sql.SQL("SELECT {} FROM {}.{}").format(
            sql.SQL(", ").join(selected), sql.Identifier(schema), sql.Identifier(table)
        )
        count = 0
        with conn.cursor() as cur:
            cur.execute(query)
            for row in cur:
                count += 1
                ctid, keys, values = row[0], row[1 : 1 + len(key)], row[1 + len(key) :]
                where = ",".join(f"{k}={v}" for k, v in zip(key, keys, strict=True)) or f"ctid={ctid}"
                for (column, _), value in zip(text_columns, values, strict=True):
                    if value is None:
                        continue
                    self.stats.cells += 1
                    text = _as_text(value)
                    if self._could_match(text):
                        self.scan_text(text, f"{label}.{schema}.{table}.{column}[{where}]")
        self.stats.rows += count
        return count


def _walk(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for path in root.rglob("*"):
        if path.is_file():
            yield path


def _primary_key(conn: psycopg.Connection[Any], schema: str, table: str) -> list[str]:
    rows = conn.execute(
        """
        SELECT a.attname
          FROM pg_index i
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
         WHERE i.indrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass AND i.indisprimary
         ORDER BY array_position(i.indkey::int[], a.attnum::int)
        """,
        (schema, table),
    ).fetchall()
    return [r[0] for r in rows]


def _as_text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            raw = zlib.decompress(raw)
        except zlib.error:
            pass
        return raw.decode("utf-8", errors="replace")
    return str(value)
