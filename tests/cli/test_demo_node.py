"""The demo's Inspector command fits the node it finds, or the demo says what to install."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tenantgate.cli.demo_node import INSPECTOR, inspector_note, node_version


def test_the_inspector_command_is_pinned_to_version_2_which_runs_on_node_20_and_newer() -> None:
    assert INSPECTOR == "@modelcontextprotocol/inspector@2"
    assert inspector_note("v20.20.2") is None
    assert inspector_note("v22.19.0") is None


def test_an_older_or_missing_node_gets_a_note_saying_what_to_install() -> None:
    old = inspector_note("v18.19.0")
    assert old is not None
    assert "found node v18.19.0" in old
    assert "Node.js 20 or newer" in old
    missing = inspector_note(None)
    assert missing is not None
    assert "found no node on PATH" in missing


def test_node_version_reads_the_node_on_path(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is not None:
        real = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
        assert node_version() == real.stdout.strip()
    monkeypatch.setenv("PATH", str(tmp_path))
    assert node_version() is None
