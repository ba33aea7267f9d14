"""Where the mediator's CPU goes: py-spy samples one HTTP worker serving tools/call under load.

The server is the one bench/mcp_e2e.py measures (``tenantgate serve --transport http``, 1 worker),
driven by the same client at concurrency 8 with the demo ``list_tickets`` read. py-spy (a
sampling profiler, a dev dependency) attaches to the worker's pid for the run and records every
stack; the tables are the flame graph's top frames as text: by *self* time (where the CPU is
spent) and by *inclusive* time (which of tenantgate's own functions the time is spent under).
The SVG flame graph is written next to the report. Idle samples (the event loop waiting in
epoll) are left out, so the percentages are of the time the worker was busy.
"""

from __future__ import annotations

import asyncio
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import Result, create_database, run_script
from bench.gate_overhead import Harness
from bench.mcp_e2e import _drive, _spread, tenantgate_server
from tenantgate.cli import pgserver

# Frames of an idle event loop: a sample whose innermost frame is one of these is not CPU.
IDLE = ("select (selectors.py", "poll (", "_run_once (asyncio", "run_forever (asyncio")
TOP = 15


def py_spy() -> str | None:
    """The py-spy executable of this environment (a dev dependency), else one on PATH."""
    here = Path(sys.executable).with_name("py-spy")
    return str(here) if here.is_file() else shutil.which("py-spy")


def _frame(raw: str) -> str:
    """'func (path/to/module.py:12)' -> 'func (module.py)': one row per function, not per line."""
    name, _, where = raw.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/tenantgate/", "/bench/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/tenantgate/":
                path = "tenantgate/" + path
            break
    else:
        path = Path(path).name
    return f"{name} ({path})"


def top_frames(collapsed: str) -> tuple[int, int, list[tuple[str, int]], list[tuple[str, int]]]:
    """(busy samples, idle samples, top self frames, top inclusive tenantgate frames) of
    py-spy's raw (collapsed-stack) output: one 'frame;frame;... count' line per stack."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    busy = idle = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        frames = [f for f in frames if not f.startswith("thread ")]
        if not frames:
            continue
        if any(frames[-1].startswith(i) for i in IDLE):
            idle += count
            continue
        busy += count
        own[_frame(frames[-1])] += count
        for name in {_frame(f) for f in frames if "tenantgate/" in f}:
            inclusive[name] += count
    return busy, idle, own.most_common(TOP), inclusive.most_common(TOP)


def _record(exe: str, pid: int, seconds: float, out: Path, fmt: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--rate",
            "250",
            "--duration",
            str(int(seconds)),
            "--format",
            fmt,
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def run(server: pgserver.RunningServer, smoke: bool = False) -> list[Result]:
    seconds = 2.0 if smoke else 10.0
    title = "Mediator CPU profile: py-spy on one HTTP worker serving list_tickets at concurrency 8"
    own = Result("mediator_profile", title + ", top frames by self time", smoke=smoke)
    incl = Result(
        "mediator_profile_inclusive", "tenantgate's own frames, inclusive time", smoke=smoke
    )
    exe = py_spy()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        h = Harness(create_database(server, "prof"), tmp)
        ours, _ = _spread(h, 32)
        with tenantgate_server(h, tmp, 1) as srv:
            asyncio.run(_drive(srv, ours, 8, 1.0))  # warm: pool, caches, token verification
            plain = asyncio.run(_drive(srv, ours, 8, seconds / 2))
            own.notes.append(
                f"without the profiler, same run: {plain['calls_per_s']} calls/s, mediator CPU "
                f"{plain['server_cpu_ms']} ms per call"
            )
            if exe is None:
                own.notes.append("not profiled: py-spy is not installed (pip install py-spy)")
                return [own]
            raw = tmp / "profile.txt"
            spy = _record(exe, srv.proc.pid, seconds, raw, "raw")
            time.sleep(0.5)  # py-spy attaches
            loaded = asyncio.run(_drive(srv, ours, 8, seconds - 1))
            try:
                out, _ = spy.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                spy.kill()
                out, _ = spy.communicate()
            collapsed = raw.read_text() if raw.is_file() else ""
    if not collapsed:
        own.notes.append(
            "not profiled: py-spy could not sample the worker here: "
            + out.decode(errors="replace").strip()[-300:]
        )
        return [own]
    busy, idle, by_self, by_incl = top_frames(collapsed)
    for name, count in by_self:
        own.rows.append(
            {"frame (self time)": name, "samples": count, "share_of_busy": _pct(count, busy)}
        )
    for name, count in by_incl:
        incl.rows.append(
            {
                "tenantgate frame (inclusive)": name,
                "samples": count,
                "share_of_busy": _pct(count, busy),
            }
        )
    own.ratios["worker busy share under profile"] = busy / max(1, busy + idle)
    own.notes.append(
        f"{busy} busy and {idle} idle samples at 250 Hz while serving "
        f"{loaded['calls_per_s']} calls/s (the profiler slows the worker a little)"
    )
    return [own, incl]


def _pct(count: int, total: int) -> str:
    return f"{100 * count / max(1, total):.1f}%"


def main() -> int:
    return run_script(__doc__, run)


if __name__ == "__main__":
    sys.exit(main())
