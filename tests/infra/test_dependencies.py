"""The pinned environment installs a working Airflow (docs/dependencies.md).

``requirements.in`` names what the project uses at run time; ``requirements.txt`` pins it exactly
(``make pins``); ``requirements-dev.txt`` adds the development tools. These tests run in the
virtualenv under test (``make venv`` installs both files) and check that:

- every executor the project configures loads the way the scheduler loads it at start
  (``CeleryExecutor`` in docker-compose.yaml, ``LocalExecutor`` for ``make demo``);
- every provider package ``requirements.in`` names imports, with the class the project uses, and
  Airflow's providers manager registers it;
- ``pip check`` finds no broken requirement, and the installed versions are the pinned ones;
- the pin files are exact and agree with each other.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS_IN = REPO / "requirements.in"
REQUIREMENTS = REPO / "requirements.txt"
REQUIREMENTS_DEV_IN = REPO / "requirements-dev.in"
REQUIREMENTS_DEV = REPO / "requirements-dev.txt"

#: Executor name in Airflow's configuration -> the class the scheduler must end up with.
EXECUTORS = {
    "CeleryExecutor": "airflow.providers.celery.executors.celery_executor.CeleryExecutor",
    "LocalExecutor": "airflow.executors.local_executor.LocalExecutor",
}

#: Provider package -> the class of it the project uses (imported, and built where that is cheap).
PROVIDER_CLASSES = {
    "apache-airflow-providers-celery": "airflow.providers.celery.executors.celery_executor.CeleryExecutor",
    "apache-airflow-providers-fab": "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager",
    "apache-airflow-providers-http": "airflow.providers.http.hooks.http.HttpHook",
    "apache-airflow-providers-postgres": "airflow.providers.postgres.hooks.postgres.PostgresHook",
    "apache-airflow-providers-smtp": "airflow.providers.smtp.hooks.smtp.SmtpHook",
}
#: Hooks whose constructor touches nothing outside the process (no connection lookup, no network).
CHEAP_HOOKS = {
    "airflow.providers.http.hooks.http.HttpHook": {"http_conn_id": "accurate_api"},
    "airflow.providers.postgres.hooks.postgres.PostgresHook": {"postgres_conn_id": "sync_db"},
    "airflow.providers.smtp.hooks.smtp.SmtpHook": {"smtp_conn_id": "smtp_default"},
}

#: Development tools: in requirements-dev.txt, never in the runtime pins (nor the Docker image).
DEV_ONLY = {
    "pytest",
    "pytest-timeout",
    "playwright",
    "responses",
    "respx",
    "ruff",
    "mypy",
    "pandas-stubs",
    "types-requests",
    "pip-tools",
}

REQUIREMENT_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of a pip requirements file (no comments, options or blank lines)."""
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            lines.append(line)
    return lines


def named(path: Path) -> set[str]:
    """Canonical names of the packages a ``.in`` file asks for."""
    names = set()
    for line in requirement_lines(path):
        match = REQUIREMENT_NAME.match(line)
        assert match, f"{path.name}: cannot read a package name in {line!r}"
        names.add(canonical(match.group(1)))
    return names


def pins(path: Path) -> dict[str, str]:
    """name -> version of a compiled requirements file; every line must be an exact ``==`` pin."""
    pinned = {}
    for line in requirement_lines(path):
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)", line)
        assert match, f"{path.name}: not an exact pin (name==version): {line!r}"
        pinned[canonical(match.group(1))] = match.group(2)
    return pinned


def import_object(path: str) -> object:
    module, _, attribute = path.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


# -- the pin files --------------------------------------------------------------------------------


def test_pin_files_are_exact_and_cover_the_top_level_lists() -> None:
    runtime, dev = pins(REQUIREMENTS), pins(REQUIREMENTS_DEV)
    missing = named(REQUIREMENTS_IN) - set(runtime)
    assert not missing, f"requirements.in names {sorted(missing)}, not pinned in requirements.txt: make pins"
    missing = named(REQUIREMENTS_DEV_IN) - set(dev)
    assert not missing, f"requirements-dev.in names {sorted(missing)}, not in requirements-dev.txt: make pins"
    assert "-c requirements.txt" in REQUIREMENTS_DEV_IN.read_text().splitlines()


def test_dev_pins_agree_with_the_runtime_pins() -> None:
    runtime, dev = pins(REQUIREMENTS), pins(REQUIREMENTS_DEV)
    differ = {
        name: (runtime[name], dev[name]) for name in set(runtime) & set(dev) if runtime[name] != dev[name]
    }
    assert not differ, f"(requirements.txt, requirements-dev.txt) pin these differently: {differ}"


def test_runtime_pins_leave_out_the_development_tools() -> None:
    assert not DEV_ONLY & set(pins(REQUIREMENTS))
    assert DEV_ONLY <= set(pins(REQUIREMENTS_DEV))


def test_every_named_provider_has_an_import_check() -> None:
    providers = {name for name in named(REQUIREMENTS_IN) if name.startswith("apache-airflow-providers-")}
    assert providers == set(PROVIDER_CLASSES), "keep PROVIDER_CLASSES in step with requirements.in"


def test_every_configured_executor_is_checked() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    configured = {compose["x-airflow-common"]["environment"]["AIRFLOW__CORE__EXECUTOR"]}
    env_sh = (REPO / "scripts/env.sh").read_text()
    configured |= set(re.findall(r'AIRFLOW__CORE__EXECUTOR="\$\{AIRFLOW__CORE__EXECUTOR:-(\w+)\}"', env_sh))
    assert configured == {"CeleryExecutor", "LocalExecutor"}
    assert configured <= set(EXECUTORS)


# -- the installed environment ---------------------------------------------------------------------

# What the scheduler does at start: resolve [core] executor, import the class, build it. The plain
# import comes first so that a broken import shows its own traceback (ExecutorLoader.load_executor
# turns an ImportError into a generic "could not be loaded" configuration error).
LOAD_EXECUTOR = """
from airflow.executors.executor_loader import ExecutorLoader

name = ExecutorLoader.get_default_executor_name()
ExecutorLoader.import_executor_cls(name)
executor = ExecutorLoader.get_default_executor()
print(type(executor).__module__ + "." + type(executor).__qualname__)
"""


@pytest.mark.parametrize("executor", sorted(EXECUTORS))
def test_executor_loads_as_the_scheduler_loads_it(executor: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__EXECUTOR": executor,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    result = subprocess.run(
        [sys.executable, "-c", LOAD_EXECUTOR],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, (
        f"AIRFLOW__CORE__EXECUTOR={executor}: the executor does not load with the installed packages "
        f"(the scheduler would die at start):\n{result.stderr[-4000:]}"
    )
    assert result.stdout.strip().splitlines()[-1] == EXECUTORS[executor]


@pytest.mark.parametrize("provider", sorted(PROVIDER_CLASSES))
def test_provider_imports_and_is_registered(provider: str) -> None:
    from airflow.providers_manager import ProvidersManager

    assert importlib.metadata.version(provider) == pins(REQUIREMENTS)[provider]
    cls = import_object(PROVIDER_CLASSES[provider])
    assert provider in ProvidersManager().providers, f"{provider} is installed but Airflow does not see it"
    kwargs = CHEAP_HOOKS.get(PROVIDER_CLASSES[provider])
    if kwargs is not None:
        assert callable(cls)
        cls(**kwargs)


def test_pip_check_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"pip check:\n{result.stdout}{result.stderr}"


def test_installed_versions_are_the_pinned_ones() -> None:
    wrong = {}
    for path in (REQUIREMENTS, REQUIREMENTS_DEV):
        for name, version in pins(path).items():
            try:
                installed = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                installed = "not installed"
            if installed != version:
                wrong[name] = f"pinned {version}, installed {installed}"
    assert not wrong, f"{sys.prefix} is not the pinned environment (run `make venv`): {wrong}"
