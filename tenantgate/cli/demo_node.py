"""The Node.js the demo finds, for the Inspector command it prints.

The demo prints `npx -y @modelcontextprotocol/inspector@2`: pinned, because an unpinned `npx`
resolved to 0.15.0 on Node 20, which refuses arguments for a URL-based server. Version 2 runs on
Node 20 and newer (its package asks for 22.19 and npm only warns; tests/mediator/test_inspector.py
runs it on this machine's Node 20). Older or missing: the demo says so and what to install.
"""

from __future__ import annotations

import re
import shutil
import subprocess

INSPECTOR = "@modelcontextprotocol/inspector@2"
MIN_NODE = 20


def node_version() -> str | None:
    """`node --version` of the node on PATH (e.g. "v20.20.2"), None when there is none."""
    node = shutil.which("node")
    if node is None:
        return None
    try:
        done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = done.stdout.strip()
    return version if done.returncode == 0 and re.match(r"v\d+\.", version) else None


def inspector_note(version: str | None) -> str | None:
    """None when the printed Inspector command runs on `version`; else what to do instead."""
    if version is not None and int(version[1:].split(".", 1)[0]) >= MIN_NODE:
        return None
    found = f"found node {version}" if version else "found no node on PATH"
    return (
        f"note: {INSPECTOR} needs Node.js {MIN_NODE} or newer ({found}): install one "
        "(your package manager, or `npm install node@22` in a folder of its own and its "
        "node_modules/.bin first on PATH), or use the Python client: `tenantgate demo --scripted`"
    )
