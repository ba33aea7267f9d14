"""Process hardening, settings parsing, and the demo's narrated session end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tenantgate.mediator.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def test_process_is_not_dumpable_and_has_no_core_dumps_after_hardening() -> None:
    code = (
        "import resource; from tenantgate.mediator.hardening import harden, is_dumpable;"
        "done = harden(); print(done['no_core_dumps'], done['not_dumpable'], is_dumpable(),"
        " resource.getrlimit(resource.RLIMIT_CORE))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.split()[:3] == ["True", "True", "False"]
    assert "(0, 0)" in out.stdout


def test_prepare_threshold_none_for_pgbouncer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANTGATE_PREPARE_THRESHOLD", "none")
    assert Settings().prepare_threshold is None
    monkeypatch.setenv("TENANTGATE_PREPARE_THRESHOLD", "5")
    assert Settings().prepare_threshold == 5


def test_settings_never_print_the_database_password() -> None:
    s = Settings(database_url="postgresql://m:hunter2-password@db/x")  # type: ignore[arg-type]
    assert "hunter2" not in repr(s)
    assert "hunter2" not in str(s.model_dump())


def test_demo_scripted_plays_every_promise_and_exits_0() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tenantgate.cli.demo", "--scripted", "--port", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "every promise held" in out.stdout
    for step in (
        "allowed read",
        "cross-tenant",
        "paused",
        "approval",
        "credits run out",
        "audit chain verifies",
    ):
        assert step in out.stdout


def test_serve_refuses_to_start_without_a_database_or_a_key() -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTGATE_")}
    cmd = [sys.executable, "-m", "tenantgate.cli.serve", "--transport", "http"]
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "TENANTGATE_DATABASE_URL" in out.stderr
    env["TENANTGATE_DATABASE_URL"] = "postgresql://m:pw-not-shown@127.0.0.1:1/x"
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "no verification key" in out.stderr
    assert "pw-not-shown" not in out.stderr
