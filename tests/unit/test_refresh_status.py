"""Refresh answers 403 when Airflow refused the user every run asked of it, 200 otherwise."""

from __future__ import annotations

from typing import Any

from include.iseller_accurate.web.refresh import refused_status


def _run(ok: bool, status_code: int | None = None, message: str = "m") -> dict[str, Any]:
    run: dict[str, Any] = {"ok": ok, "message": message}
    if status_code is not None:
        run["status_code"] = status_code
    return run


def test_every_run_refused_is_403_with_the_refusal_as_detail() -> None:
    result = {"runs": [_run(False, 403, "you may not clear"), _run(False, 401)], "skipped": []}
    assert refused_status(result) == 403
    assert result["detail"] == "you may not clear"


def test_one_run_cleared_beside_a_refused_one_is_200_with_each_outcome() -> None:
    result = {"runs": [_run(True), _run(False, 403)], "skipped": []}
    assert refused_status(result) == 200
    assert "detail" not in result


def test_other_failures_and_nothing_to_clear_are_not_refusals() -> None:
    assert refused_status({"runs": [_run(False, 404)], "skipped": []}) == 200  # run gone
    assert refused_status({"runs": [_run(False)], "skipped": []}) == 200  # Airflow unreachable
    assert refused_status({"runs": [], "skipped": [{"id": 1, "reason": "synced"}]}) == 200
