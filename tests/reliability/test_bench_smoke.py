"""The benchmarks' smoke run: every script runs end to end and the report is written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.pg import REPO


def test_bench_smoke_run_writes_a_report_with_every_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    done = subprocess.run(
        [sys.executable, "bench/run_all.py", "--smoke", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = out.read_text()
    for section in (
        "Credits under contention",
        "RLS read vs hand-written WHERE",
        "Session-check latency",
        "Database time per gate statement",
        "Audit appends",
        "Gate overhead",
        "End to end over MCP",
        "One org vs 32 orgs",
        "PostgreSQL CPU per enforced call",
        "Audit chain: 32 writers on one org's chain",
        "Audit appends per second as the log grows",
        "Audit verify, export and retire",
        "End to end behind PgBouncer in transaction mode",
        "CPU budget per call, workers",
        "Mediator CPU profile",
        "PostgreSQL time per enforced call, statement by statement",
    ):
        assert section in report
    assert "zero overspend" in report
    assert "every chain verified intact" in report
    pictures = re.findall(r"!\[[^\]]*\]\((benchmarks/[^)]+\.png)\)", report)
    # the first 7, the e2e budget and PgBouncer, one_org, gate_cpu, gate_parts and audit_scale's two
    assert len(pictures) >= 14
    for picture in pictures:
        assert (tmp_path / picture).is_file(), picture
