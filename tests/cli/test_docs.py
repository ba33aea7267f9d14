"""The README's walkthroughs stay copy-pasteable: the Operating walkthrough runs as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tenantgate.mediator.keys import generate_key_material
from tests.cli.conftest import ok, run
from tests.pg import TestDatabase

DOC = Path(__file__).resolve().parents[2] / "README.md"


def section_commands(title: str) -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines()
            if line.strip().startswith("tenantgate ")]


def test_operating_walkthrough_runs_as_written(database: TestDatabase, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    Path("signing.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    Path("globex-api-key.txt").write_text("sk_live_globex\n")
    keys = tmp_path / "keys"
    keys.write_text(f"k2026:{generate_key_material().reveal()}\n")
    keys.chmod(0o600)
    env: dict[str, str | None] = {"TENANTGATE_DSN": database.admin_dsn,
                                  "TENANTGATE_SECRET_KEYS_FILE": str(keys),
                                  "TENANTGATE_SECRET_KEY_CURRENT": "k2026"}
    commands = section_commands("Operating")
    assert len(commands) > 25
    ran = 0
    for command in commands:
        if "$" in command:  # needs an id from an earlier step
            continue
        stdin = None
        if " < " in command:
            command, source = command.split(" < ", 1)
            stdin = Path(source.strip()).read_text()
        command = command.split(" > ", 1)[0]
        args = shlex.split(command)[1:]
        result = run(args, env=env, input=stdin)
        expected = 1 if args[:2] == ["audit", "anomalies"] and result.stdout else 0
        assert result.exit_code == expected, (command, result.stdout, result.stderr)
        ran += 1
    assert ran > 25
    assert Path("acme-audit.jsonl").exists()


def test_dba_walkthrough_commands_exist() -> None:
    for command in section_commands("For DBAs"):
        args = [a for a in shlex.split(command)[1:3] if not a.startswith("-")]
        ok(run([*args[:2], "--help"]))
