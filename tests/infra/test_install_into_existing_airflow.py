"""Install into an existing Airflow (docs/install-into-existing-airflow.md), in a fresh Airflow home.

Only ``dags/``, ``plugins/`` and ``include/`` are copied, in the two layouts the docs give: one
project root that is the import root (on ``PYTHONPATH``), and the managed-platform layout
(``include/`` inside the plugins folder, which Airflow puts on ``sys.path``; no ``PYTHONPATH``).
Nothing else of the repository is reachable (the commands run from the temporary directory, with a
``PYTHONPATH`` that names only the copy, if any). Then, as a data
team would:

1. ``airflow db migrate`` against a throwaway PostgreSQL;
2. every DAG file parses with no import error, and every DAG id of the project is there;
3. Airflow's plugins manager loads the plugin: its FastAPI app under ``/integrations`` and its menu
   entries (external views), with no plugin import error;
4. the ledger migrations run from the copied ``include/`` on an empty ``sync_db``;
5. the FAB roles are set up from the copied ``include/`` (``python -m include.iseller_accurate.roles``).

Nothing may import the repository's ``sandbox`` package (it is not shipped).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from include.iseller_accurate.roles import SYNC_DAG_IDS

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))

CHECK = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
from airflow import plugins_manager

bag = DagBag(dag_folder=sys.argv[1])
plugins, plugin_errors = plugins_manager._get_plugins()
apps, _ = plugins_manager.get_fastapi_plugins()
views, _ = plugins_manager._get_ui_plugins()
import include
print(json.dumps({
    "dag_ids": sorted(bag.dag_ids),
    "import_errors": {str(k): v for k, v in bag.import_errors.items()},
    "plugins": [p.name for p in plugins],
    "plugin_errors": plugin_errors,
    "apps": [{"url_prefix": a["url_prefix"], "name": a["name"]} for a in apps],
    "views": [v["name"] for v in views],
    "include_from": include.__path__[0],
    "sandbox_imported": sorted(m for m in sys.modules if m == "sandbox" or m.startswith("sandbox.")),
}))
"""

LEDGER = r"""
from include.iseller_accurate.ledger import connect, dsn_from_connection, migrate
with connect(dsn_from_connection(), autocommit=True) as conn:
    print(len(migrate(conn)), len(migrate(conn)))
"""


def _create_db(server_dsn: str, name: str) -> str:
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server_dsn.rpartition('/')[0]}/{name}"


def _drop_db(server_dsn: str, name: str) -> None:
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _ship(root: Path, layout: str) -> Path:
    """Copy the shipped folders for ``layout``; return the import root (the folder containing include/)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "dags", root / "dags", ignore=ignore)
    shutil.copytree(REPO / "plugins", root / "plugins", ignore=ignore)
    if layout == "import-root":  # <root>/{dags,plugins,include}, PYTHONPATH=<root>
        shutil.copytree(REPO / "include", root / "include", ignore=ignore)
        return root
    # MWAA / Cloud Composer: only the DAGs and plugins folders are uploaded. Airflow puts the plugins
    # folder on sys.path in every component; .airflowignore keeps the plugins manager out of include/.
    shutil.copytree(REPO / "include", root / "plugins" / "include", ignore=ignore)
    (root / "plugins" / ".airflowignore").write_text("include/\n")
    return root / "plugins"


@pytest.fixture(scope="module", params=["import-root", "plugins-folder"])
def installed(
    request: pytest.FixtureRequest, pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, object]]:
    """A fresh Airflow home with the three shipped folders, its metadata database migrated."""
    work = tmp_path_factory.mktemp("existing-airflow")
    root, home = work / "project", work / "airflow-home"
    home.mkdir()
    import_root = _ship(root, request.param)
    suffix = uuid.uuid4().hex[:8]
    meta_db, ledger_db = f"af_{suffix}", f"sync_{suffix}"
    meta = _create_db(pg_server_dsn, meta_db)
    ledger = _create_db(pg_server_dsn, ledger_db)
    host, port = meta.split("@", 1)[1].split("/", 1)[0].split(":")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "PYTHON", "SYNC_")) and key not in ("VIRTUAL_ENV",)
    }
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(root / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(root / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=meta.replace("postgresql://", "postgresql+psycopg2://", 1),
        AIRFLOW__CORE__AUTH_MANAGER="airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager",
        AIRFLOW_CONN_SYNC_DB=json.dumps(
            {
                "conn_type": "postgres",
                "host": host,
                "port": int(port),
                "schema": ledger_db,
                "login": "postgres",
            }
        ),
    )

    if request.param == "import-root":
        env["PYTHONPATH"] = str(import_root)  # `import include.iseller_accurate...` everywhere

    def run(*args: str, import_root_on_path: bool = False) -> subprocess.CompletedProcess[str]:
        """Run a command in the new Airflow; ``import_root_on_path``: a plain `python` using include/."""
        extra = {"PYTHONPATH": str(import_root)} if import_root_on_path else {}
        return subprocess.run(
            args, cwd=work, env={**env, **extra}, capture_output=True, text=True, timeout=300, check=False
        )

    migrated = run(AIRFLOW, "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    try:
        yield {"root": root, "import_root": import_root, "run": run, "ledger": ledger}
    finally:
        _drop_db(pg_server_dsn, meta_db)
        _drop_db(pg_server_dsn, ledger_db)


@pytest.fixture(scope="module")
def parsed(installed: dict[str, object]) -> dict[str, object]:
    root = installed["root"]
    answer = installed["run"](sys.executable, "-c", CHECK, str(root / "dags"))  # type: ignore[operator]
    assert answer.returncode == 0, answer.stderr[-3000:]
    return json.loads(answer.stdout.strip().splitlines()[-1])


def test_every_dag_parses_with_no_import_error(
    parsed: dict[str, object], installed: dict[str, object]
) -> None:
    assert parsed["import_errors"] == {}
    assert parsed["dag_ids"] == sorted(SYNC_DAG_IDS)
    # the shipped copy was imported, not the repository
    assert Path(str(parsed["include_from"])) == installed["import_root"] / "include"  # type: ignore[operator]


def test_the_plugin_loads_with_its_app_and_menu_entries(parsed: dict[str, object]) -> None:
    assert parsed["plugin_errors"] == {}
    assert "iseller_accurate" in parsed["plugins"]  # type: ignore[operator]
    assert {"url_prefix": "/integrations", "name": "iSeller-Accurate integration"} in parsed["apps"]  # type: ignore[operator]
    assert {"Sync Status", "Webhook Log", "Sync documents"} <= set(parsed["views"])  # type: ignore[arg-type]


def test_nothing_imports_the_repositorys_sandbox(parsed: dict[str, object]) -> None:
    assert parsed["sandbox_imported"] == []


def test_ledger_migrations_run_from_the_shipped_include(installed: dict[str, object]) -> None:
    answer = installed["run"](sys.executable, "-c", LEDGER, import_root_on_path=True)  # type: ignore[operator]
    assert answer.returncode == 0, answer.stderr[-3000:]
    first, second = (int(n) for n in answer.stdout.split())
    shipped = len(
        list((installed["import_root"] / "include" / "iseller_accurate" / "migrations").glob("*.sql"))
    )  # type: ignore[operator]
    assert (first, second) == (shipped, 0)


def test_fab_roles_set_up_from_the_shipped_include(installed: dict[str, object]) -> None:
    run = installed["run"]
    applied = run(sys.executable, "-m", "include.iseller_accurate.roles", import_root_on_path=True)  # type: ignore[operator]
    assert applied.returncode == 0, applied.stderr[-3000:]
    assert "SyncOperator:" in applied.stdout and "SyncViewer:" in applied.stdout
    checked = run(sys.executable, "-m", "include.iseller_accurate.roles", "--check", import_root_on_path=True)  # type: ignore[operator]
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
