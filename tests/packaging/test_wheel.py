"""The wheel works away from the checkout: schema files inside, migrations run, version printed.

Builds the wheel, installs it with the constraints file into a fresh virtual environment in a
temporary folder, and runs the installed `tenantgate` from another folder against a throwaway
database: `db upgrade`, `db check`, `db downgrade -1 --yes`, `--version`.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.pg import DatabaseFactory, url_for

REPO = Path(__file__).resolve().parents[2]
DATA = "share/tenantgate/"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = out.glob("tenantgate-*.whl")
    return built


def schema_files() -> set[str]:
    found = set()
    for folder in ("sql", "migrations", "tools"):  # tools/: tools files, once they exist
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                found.add(path.relative_to(REPO).as_posix())
    return found


def test_the_wheel_carries_every_schema_file_and_one_license_expression(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = zf.read(metadata).decode()
    shipped = {n.split(DATA, 1)[1] for n in names if DATA in n}
    assert schema_files() <= shipped, sorted(schema_files() - shipped)
    assert "License-Expression: Apache-2.0" in meta
    assert "Requires-Dist: httpx2" in meta
    assert "Requires-Dist: prometheus-client" in meta


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("fresh")
    env_dir = home / "venv"
    venv.create(env_dir, with_pip=True)
    subprocess.run(
        [
            str(env_dir / "bin" / "pip"),
            "install",
            "--quiet",
            "-c",
            str(REPO / "constraints.txt"),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=900,
        cwd=home,
    )
    return env_dir / "bin" / "tenantgate"


@pytest.fixture
def empty_url(database_factory: DatabaseFactory) -> Iterator[str]:
    name = database_factory.create_empty(f"tg_wheel_{secrets.token_hex(4)}")
    yield url_for(database_factory.server, name)
    database_factory.drop(name)


def run(tool: Path, *args: str, dsn: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TENANTGATE_DSN")}
    env.pop("PYTHONPATH", None)
    full = [str(tool), *args, *(["--dsn", dsn] if dsn else [])]
    return subprocess.run(
        full, env=env, cwd=tool.parent.parent.parent, capture_output=True, text=True, timeout=300
    )


def test_the_installed_wheel_migrates_and_checks_a_database_away_from_the_checkout(
    installed: Path, empty_url: str
) -> None:
    shown = run(installed, "--version")
    assert shown.returncode == 0
    assert shown.stdout.strip() == f"tenantgate {version('tenantgate')}"
    where = subprocess.run(
        [str(installed.parent / "python"), "-c", "import tenantgate; print(tenantgate.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=installed.parent,
    )
    assert str(REPO) not in where.stdout  # really the installed copy
    for step in (
        ("db", "upgrade"),
        ("db", "check"),
        ("db", "downgrade", "-1", "--yes"),
        ("db", "upgrade"),
        ("db", "current"),
    ):
        done = run(installed, *step, dsn=empty_url)
        assert done.returncode == 0, (step, done.stdout, done.stderr)


def test_the_installed_wheel_plays_the_scripted_demo(installed: Path) -> None:
    done = run(installed, "demo", "--scripted", "--port", "0")
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    assert "demo finished: every promise held" in done.stdout
