"""A new user's first hour: `pipx install` the built wheel, then the README's DBA walkthrough and
the start of its Operating walkthrough, line by line, with the installed `tenantgate` against a
throwaway PostgreSQL, away from the checkout.

pipx itself comes from PyPI into this test's own virtual environment; PIPX_HOME, PIPX_BIN_DIR and
PIPX_MAN_DIR point into a temporary folder, so nothing outside it is touched. The wheel's
dependencies install with the constraints file (what CI pins). Slow: a build, a pipx install and
some thirty cold starts of the command; make test skips it, .ci/run runs it with `-m slow`.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from psycopg import sql

from tenantgate.mediator.keys import generate_key_material
from tests.pg import ROLE_PASSWORDS, DatabaseFactory, url_for

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
pytestmark = pytest.mark.slow


def sh_lines(title: str) -> list[str]:
    """The command lines of the README section `title`'s sh blocks (comments and blanks out)."""
    text = README.read_text(encoding="utf-8")
    section = text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    lines = [line.split(" #", 1)[0].strip() for b in blocks for line in b.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


class Pipx:
    """pipx in its own venv, with every folder it writes under `home`."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("PIPX_", "TENANTGATE_", "VIRTUAL_ENV"))
                    and k not in ("DATABASE_URL", "PYTHONPATH")}
        self.env.update(PIPX_HOME=str(home / "pipx"), PIPX_BIN_DIR=str(home / "bin"),
                        PIPX_MAN_DIR=str(home / "man"))
        tool_env = home / "pipx-venv"
        venv.create(tool_env, with_pip=True)
        self.exe = tool_env / "bin" / "pipx"
        subprocess.run([str(tool_env / "bin" / "pip"), "install", "--quiet", "pipx>=1.7,<2"],
                       check=True, capture_output=True, timeout=600, cwd=home)

    def __call__(self, *args: str) -> str:
        done = subprocess.run([str(self.exe), *args], env=self.env, cwd=self.home,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
        return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pipx, Path]:
    home = tmp_path_factory.mktemp("newuser")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(home / "dist"),
                    str(REPO)], check=True, capture_output=True, timeout=600)
    (wheel,) = (home / "dist").glob("tenantgate-*.whl")
    pipx = Pipx(home)
    pipx("install", "--pip-args", f"--constraint {REPO / 'constraints.txt'}", str(wheel))
    return pipx, home / "bin" / "tenantgate"


@pytest.fixture
def empty_url(database_factory: DatabaseFactory) -> Iterator[str]:
    name = database_factory.create_empty(f"tg_pipx_{secrets.token_hex(4)}")
    yield url_for(database_factory.server, name)
    database_factory.drop(name)


def test_pipx_installs_the_wheel_and_a_new_user_runs_the_readme_walkthroughs(
    installed: tuple[Pipx, Path], empty_url: str, tmp_path: Path
) -> None:
    pipx, tenantgate = installed
    env = {**pipx.env, "DATABASE_URL": empty_url, "HOME": str(tmp_path)}
    share: Path | None = None
    ran: list[str] = []

    def expand(word: str) -> str:
        assert share is not None, "the README uses $SHARE before it says how to find it"
        return word.replace('"', "").replace("$SHARE", str(share))

    def command(line: str, extra_env: dict[str, str] | None = None) -> None:
        target = None
        if " > " in line:
            line, target = (part.strip() for part in line.split(" > ", 1))
        stdin = None
        if " < " in line:
            line, source = (part.strip() for part in line.split(" < ", 1))
            stdin = (tmp_path / source).read_text()
        args = shlex.split(line)[1:]
        done = subprocess.run([str(tenantgate), *args], env={**env, **(extra_env or {})},
                              cwd=tmp_path, input=stdin, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, (line, done.stdout[-2000:], done.stderr[-2000:])
        if target is not None:
            (tmp_path / target.replace('"', "")).write_text(done.stdout)
        ran.append(line)

    for line in sh_lines("For DBAs"):
        if line.startswith("export DATABASE_URL="):
            continue  # the throwaway database instead
        if line.startswith("pipx install"):
            assert "tenantgate" in line  # done by the fixture, with the wheel just built
        elif line.startswith("SHARE="):
            venvs = pipx("environment", "--value", "PIPX_LOCAL_VENVS").strip()
            assert "$(pipx environment --value PIPX_LOCAL_VENVS)/tenantgate/share" in line
            share = Path(venvs) / "tenantgate" / "share" / "tenantgate"
        elif line.startswith("psql") and "\\password" in line:
            role = line.rsplit(" ", 1)[1].strip("'")
            with psycopg.connect(empty_url, autocommit=True) as conn:  # what psql would prompt
                conn.execute(sql.SQL("alter role {} password {}").format(
                    sql.Identifier(role), sql.Literal(ROLE_PASSWORDS[role])))
        elif line.startswith("psql") and " -1 -f " in line:
            script = Path(expand(line.split(" -1 -f ", 1)[1]))
            with psycopg.connect(empty_url) as conn:  # -1: one transaction, as psql -1 does
                conn.execute(script.read_text(encoding="utf-8").encode())
        elif line.startswith("cp "):
            source, target = (expand(w) for w in shlex.split(line)[1:])
            shutil.copy(source, tmp_path / target)
        elif line.startswith("tenantgate db enrol"):
            _own_tables(empty_url)
            command(line)
        elif line.startswith("tenantgate "):
            command(line)
        else:
            raise AssertionError(f"the README's DBA walkthrough has a line this test cannot "
                                 f"play: {line!r}")
    assert "tenantgate tools apply tools.yaml" in ran
    assert "create table" in (tmp_path / "tenantgate-review.sql").read_text().lower()

    # The Operating walkthrough, as tenantgate_admin, up to the first open session.
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "signing.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (tmp_path / "globex-api-key.txt").write_text("sk_live_globex\n")
    keys = tmp_path / "keys"
    keys.write_text(f"k2026:{generate_key_material().reveal()}\n")
    keys.chmod(0o600)
    admin = url_for_role(empty_url, "tenantgate_admin")
    operating = {"TENANTGATE_DSN": admin, "TENANTGATE_SECRET_KEYS_FILE": str(keys),
                 "TENANTGATE_SECRET_KEY_CURRENT": "k2026"}
    env.pop("DATABASE_URL")
    for line in sh_lines("Operating"):
        if not line.startswith("tenantgate ") or "$" in line:
            continue  # exports (set above) and steps that need an id from an earlier one
        command(line, operating)
        if line.startswith("tenantgate sessions list"):
            break
    token = (tmp_path / "token.txt").read_text().strip()
    assert token.count(".") == 2
    with psycopg.connect(empty_url) as conn:
        row = conn.execute("select count(*) from tenantgate.sessions").fetchone()
    assert row == (1,)


def url_for_role(url: str, role: str) -> str:
    """`url` with the tenantgate role's user and password instead of the superuser's."""
    rest = url.split("@", 1)[1]
    return f"postgresql://{role}:{ROLE_PASSWORDS[role]}@{rest}"


def _own_tables(url: str) -> None:
    """The tables the README enrols (crm.notes, crm.cases) and the role it keeps seeing them."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("""
            do $$ begin
              if not exists (select from pg_roles where rolname = 'crm_app') then
                create role crm_app;
              end if;
            exception when duplicate_object then null;  -- another test made it meanwhile
            end $$""")
        conn.execute("""
            create schema if not exists crm;
            create table if not exists crm.notes (
              org_id uuid not null, customer_id uuid not null, note_id bigint not null,
              body text not null, primary key (org_id, customer_id, note_id));
            create index if not exists notes_org on crm.notes (org_id);
            create table if not exists crm.cases (
              org_id uuid not null, customer_id uuid not null, case_id bigint not null,
              status text not null, primary key (org_id, customer_id, case_id));
            create index if not exists cases_org on crm.cases (org_id);""")
