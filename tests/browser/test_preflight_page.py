"""Browse > Preflight in a real browser, on the real stack, after a real run of the preflight DAG.

The demo shop's own deliberate flaws are what the preflight must list: SKU BRG-0049 has no Accurate
item (an error: the run fails) and one product has no SKU (a warning). The scheduler runs the DAG
against the sandboxes; its task log ends with the list; the page shows the same problems with their
fixes and the discovered Accurate host. Anonymous visitors are sent to Airflow's login.

Screenshot: test-artifacts/screenshots/preflight.png. Needs the running stack (``make up``) and
/usr/bin/chromium; skipped without them unless the stack is required (CI, ``make test``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.browser.test_operator_pages import (  # noqa: F401 - the fixtures are used by name
    SCREENSHOTS,
    SHOP,
    _page,
    _shot,
    _sign_in,
    airflow,
    browser,
)
from tests.e2e.airflow_api import AirflowAPI, accurate_sandbox_url

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(600)]

DAG_ID = "iseller_accurate_preflight"
NO_SKU = next(p for p in SHOP.products if not p.sku)
NOT_IN_ACCURATE = next(p for p in SHOP.products if not p.in_accurate)


@pytest.fixture(scope="module")
def preflight_run(airflow: AirflowAPI) -> Iterator[str]:  # noqa: F811
    airflow.wait_for_dag(DAG_ID)
    airflow.unpause(DAG_ID)
    run_id = airflow.trigger_dag(DAG_ID)["dag_run_id"]
    state = airflow.wait_for_run(DAG_ID, run_id, timeout=300)
    assert state == "failed", f"the demo shop's SKU gap must fail the preflight, got {state}"
    yield run_id


def test_run_fails_and_its_log_ends_with_the_list(airflow: AirflowAPI, preflight_run: str) -> None:  # noqa: F811
    log = airflow.task_log(DAG_ID, preflight_run, "preflight")
    tail = log[log.rindex("Preflight failed:") :]
    # The list comes after the exception and the callbacks' own lines: it is what the log ends with.
    assert log.rindex("Task failed with exception") < log.rindex("Preflight failed:")
    assert "Task note: Preflight failed" not in tail
    assert f'ERROR SKU "{NOT_IN_ACCURATE.sku}"' in tail
    assert f'create item "{NOT_IN_ACCURATE.sku}" in Accurate' in tail
    assert f'WARNING product "{NO_SKU.name}"' in tail
    assert "sandbox-api-token" not in log and "sandbox-signature-secret" not in log


def test_preflight_page_lists_the_problems_with_their_fixes(
    airflow: AirflowAPI,  # noqa: F811
    browser: Any,  # noqa: F811
    preflight_run: str,
) -> None:
    # Anonymous: the page sends to the login, the JSON answers 401.
    page_url = f"{airflow.base_url}/integrations/operator/preflight"
    anonymous = httpx.get(page_url, follow_redirects=False, timeout=30)
    assert anonymous.status_code == 303 and "login" in anonymous.headers["location"]
    assert httpx.get(f"{airflow.base_url}/integrations/operator/api/preflight", timeout=30).status_code == 401

    page = _page(browser)
    _sign_in(page, airflow)
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="Preflight").click()
    page.wait_for_url("**/plugin/preflight**")
    frame = page.locator('iframe[title="Preflight"]').element_handle().content_frame()
    frame.locator("h1", has_text="Preflight").wait_for()

    status = frame.locator("#preflight-status")
    assert status.get_attribute("data-status") == "failed"
    assert preflight_run in status.inner_text()
    assert frame.locator('[data-fact="accurate_host"]').inner_text() == accurate_sandbox_url()

    errors = frame.locator("#errors tbody tr")
    subjects = [errors.nth(i).locator('[data-field="subject"]').inner_text() for i in range(errors.count())]
    assert f'SKU "{NOT_IN_ACCURATE.sku}"' in subjects
    row = errors.filter(has_text=NOT_IN_ACCURATE.sku)
    assert "create item" in row.locator('[data-field="fix"]').inner_text()
    warnings = frame.locator("#warnings tbody tr")
    no_sku = warnings.filter(has_text=NO_SKU.name)
    assert no_sku.count() == 1
    assert "give the product in iSeller the SKU" in no_sku.locator('[data-field="fix"]').inner_text()
    assert frame.locator("#runs tbody tr").count() >= 1
    path = _shot(page, "preflight", height=900)
    assert path.parent == SCREENSHOTS and path.stat().st_size > 10_000
    page.context.close()
