"""The secret-leak scanner itself (tests/secret_scan.py): a planted secret must be found, with where.

The end-to-end scan (tests/e2e/test_zz_secret_scan_e2e.py) passing means nothing unless the scanner
can fail: each test here plants a secret, in one of the forms it could take, and expects a finding.
"""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path
from urllib.parse import quote, quote_plus

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.secret_scan import Secret, SecretScanner, forms_of

TOKEN = "tok-3f9a/b+c=d&e 12345"  # URL-unsafe characters on purpose
CLIENT_SECRET = "client-secret-7d1e0b"


def _scanner() -> SecretScanner:
    return SecretScanner(
        [Secret("ACCURATE_API_TOKEN", TOKEN), Secret("ISELLER_CLIENT_SECRET", CLIENT_SECRET)]
    )


def test_a_planted_secret_in_a_log_file_is_reported_with_file_and_line(tmp_path: Path) -> None:
    log = tmp_path / "task.log"
    log.write_text(
        "[2026-01-01] INFO calling Accurate\n"
        f"[2026-01-01] DEBUG sending headers {{'Authorization': 'Bearer {TOKEN}'}}\n"
        "[2026-01-01] INFO done\n"
    )
    scanner = _scanner()
    findings = scanner.scan_file(log)
    assert [(f.secret, f.form, f.location) for f in findings] == [("ACCURATE_API_TOKEN", "plain", f"{log}:2")]
    assert TOKEN not in findings[0].excerpt and "<ACCURATE_API_TOKEN>" in findings[0].excerpt
    assert TOKEN not in str(findings[0])


@pytest.mark.parametrize(
    ("text", "form"),
    [
        (f"GET /x?token={quote(TOKEN, safe='')} HTTP/1.1", "url"),
        (f"form: client_secret={quote_plus(CLIENT_SECRET)}&grant_type=x", None),
        (json.dumps({"note": f'he said "{TOKEN}"'}), None),
        (
            "Authorization: Basic " + base64.b64encode(f"sandbox-client:{CLIENT_SECRET}".encode()).decode(),
            None,
        ),
        ("x-blob: " + base64.urlsafe_b64encode(f"ab{TOKEN}yz".encode()).decode(), None),
        ("hex dump " + TOKEN.encode().hex(), "hex"),
    ],
    ids=["url-encoded", "form-encoded", "json-escaped", "basic-auth-base64", "base64url-inside", "hex"],
)
def test_transformed_forms_are_found(text: str, form: str | None) -> None:
    findings = _scanner().scan_text(text, "somewhere")
    assert findings, f"nothing found in {text!r}"
    assert all(f.location == "somewhere" for f in findings)
    if form:
        assert form in {f.form for f in findings}


def test_clean_text_and_redacted_headers_give_no_finding() -> None:
    scanner = _scanner()
    assert scanner.scan_text("Authorization: Bearer ***", "a") == []
    assert scanner.scan_text("{'Authorization': '***'}", "b") == []
    assert scanner.scan_text("client_secret=*** token=***", "c") == []
    assert scanner.findings == []


def test_an_unredacted_authorization_header_with_an_unknown_token_is_reported() -> None:
    findings = _scanner().scan_text("headers: Authorization: Bearer eyJhbGciOi.J9payload.sig", "x:1")
    assert [(f.secret, f.form) for f in findings] == [("Authorization header", "bearer")]
    assert "eyJhbGciOi" not in findings[0].excerpt


def test_too_short_secrets_are_skipped_and_said() -> None:
    scanner = SecretScanner([Secret("AIRFLOW_ADMIN_PASSWORD", "admin"), Secret("OK", CLIENT_SECRET)])
    assert scanner.skipped == ["AIRFLOW_ADMIN_PASSWORD"]
    assert scanner.scan_text("user admin logged in", "x") == []


def test_base64_fragments_cover_every_alignment() -> None:
    forms = forms_of(CLIENT_SECRET)
    for prefix in ("", "a", "ab", "abc"):
        encoded = base64.b64encode(f"{prefix}{CLIENT_SECRET}!".encode()).decode()
        assert any(text in encoded for name, text in forms.items() if name.startswith("base64@")), prefix


def test_scan_tree_skips_the_files_meant_to_hold_a_secret(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "a.log").write_text("nothing here\n")
    (tmp_path / "logs" / "b.log").write_text(f"oops {CLIENT_SECRET}\n")
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"admin": CLIENT_SECRET}))
    scanner = _scanner()
    scanned = scanner.scan_tree(tmp_path, exclude=[passwords])
    assert passwords not in scanned and len(scanned) == 2
    assert [f.location for f in scanner.findings] == [f"{tmp_path / 'logs' / 'b.log'}:1"]


def test_a_planted_secret_in_a_database_row_is_reported_with_table_column_and_key(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA sync")
        conn.execute(
            "CREATE TABLE sync.documents (id bigint PRIMARY KEY, reason text, payload jsonb, n integer)"
        )
        conn.execute("CREATE TABLE public.blobs (name varchar(20), data bytea, tags text[])")
        conn.execute(
            "INSERT INTO sync.documents VALUES (1, 'ok', %s, 1), (2, %s, %s, 2)",
            (
                Jsonb({"a": 1}),
                "refused: HTTP 401 for token " + TOKEN,
                Jsonb({"headers": {"x": CLIENT_SECRET}}),
            ),
        )
        conn.execute(
            "INSERT INTO public.blobs VALUES ('z', %s, %s), ('clean', %s, NULL)",
            (zlib.compress(f'{{"conn": "{CLIENT_SECRET}"}}'.encode()), ["a", "b"], b"plain"),
        )
        scanner = _scanner()
        scanner.scan_database(conn, "sync_db")

    located = sorted((f.secret, f.location) for f in scanner.findings)
    assert located == [
        ("ACCURATE_API_TOKEN", "sync_db.sync.documents.reason[id=2]"),
        ("ISELLER_CLIENT_SECRET", "sync_db.public.blobs.data[ctid=(0,1)]"),
        ("ISELLER_CLIENT_SECRET", "sync_db.sync.documents.payload[id=2]"),
    ]
    assert scanner.stats.tables == 2
    assert scanner.stats.rows == 4
    assert scanner.stats.columns == 5  # reason, payload; name, data, tags (not id, not n)
