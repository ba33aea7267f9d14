"""Where the mediator's CPU goes: py-spy samples one HTTP worker serving tools/call under load.

The server is the one bench/mcp_e2e.py measures (``tenantgate serve --transport http``, 1 worker),
driven by the same client at concurrency 8 with the demo ``list_tickets`` read.

First the ground truth, without the profiler: the worker's user and system CPU per call from
/proc (its own code vs the kernel working for it: socket I/O, epoll).

Then py-spy (a sampling profiler, a dev dependency) attaches to the worker with ``--native`` and
records every stack, C frames included, so system calls show as their libc function. The tables
are the flame graph's top frames as text: by *self* time and by *inclusive* time (which of
tenantgate's own functions it is spent under), and the share of samples by layer.

Read py-spy's shares as *wall time while runnable*, not CPU: it skips a thread asleep, but a
thread that is runnable and waiting for a core counts as busy. On a machine whose cores
PostgreSQL saturates, the kernel often switches to the backend a send() has just woken, so the
worker is counted "in send" while another process runs. The /proc split says how much of the
worker's CPU the kernel really takes (about 16% here, where py-spy shows ~60% of samples in
system calls).
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
from bench._cpu import tree, user_system_seconds
from bench.gate_overhead import Harness
from bench.mcp_e2e import _drive, _spread, tenantgate_server
from tenantgate.cli import pgserver

TOP = 15
RATE = 100  # Hz; --native stops the worker for each sample, so not more
# Layers, by the first marker found in a sample's innermost frame (else "other Python").
LAYERS = (
    ("system calls (socket I/O, epoll)", ("(libc.so", "(libpthread")),
    ("psycopg and its pool", ("(psycopg",)),
    ("uvicorn, httptools, uvloop, asyncio", ("(uvicorn/", "(httptools", "(uvloop", "(asyncio/")),
    ("logging", ("(logging/",)),
    ("prometheus_client", ("(prometheus_client/",)),
    ("tenantgate", ("(tenantgate/",)),
    ("orjson, json", ("(orjson", "(json/")),
)


def py_spy() -> str | None:
    """The py-spy executable of this environment (a dev dependency), else one on PATH."""
    here = Path(sys.executable).with_name("py-spy")
    return str(here) if here.is_file() else shutil.which("py-spy")


def _frame(raw: str) -> str:
    """'func (/abs/path/pkg/module.py:12)' -> 'func (pkg/module.py)': one row per function, with
    the path from the package on (site-packages, this repository's tenantgate/, the stdlib)."""
    name, _, where = raw.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    if "site-packages/" in path:
        path = path.rsplit("site-packages/", 1)[1]
    elif "/tenantgate/" in path:
        path = "tenantgate/" + path.rsplit("/tenantgate/", 1)[1]
    elif "/" in path:
        parent, file = Path(path).parent.name, Path(path).name
        plain = parent.startswith("python") or not parent or ".so" in file  # stdlib, C library
        path = file if plain else f"{parent}/{file}"
    return f"{name} ({path})"


def top_frames(
    collapsed: str,
) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]], dict[str, int]]:
    """(samples, top self frames, top inclusive tenantgate frames, samples per layer) of
    py-spy's raw (collapsed-stack) output: one 'frame;frame;... count' line per stack."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    layers: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [
            _frame(f) for f in stack.split(";") if f and not f.startswith(("process ", "thread "))
        ]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        layer = next((n for n, marks in LAYERS if any(m in frames[-1] for m in marks)), None)
        layers[layer or "other Python"] += count
        for name in {f for f in frames if "(tenantgate/" in f}:
            inclusive[name] += count
    return total, own.most_common(TOP), inclusive.most_common(TOP), dict(layers.most_common())


def _record(exe: str, pid: int, seconds: float, out: Path, fmt: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(RATE),
            "--duration",
            str(int(seconds)),
            "--format",
            fmt,
            "--native",
            "--full-filenames",
            "--output",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def run(server: pgserver.RunningServer, smoke: bool = False) -> list[Result]:
    seconds = 2.0 if smoke else 10.0
    title = "Mediator CPU profile: py-spy on one HTTP worker serving list_tickets at concurrency 8"
    own = Result(
        "mediator_profile",
        title + ", top frames by self time",
        smoke=smoke,
        plot={
            "kind": "bars",
            "label": "frame (self time)",
            "value": "busy_pct",
            "unit": "% of busy samples",
        },
    )
    incl = Result(
        "mediator_profile_inclusive",
        "Mediator CPU profile: tenantgate's own frames, inclusive time",
        smoke=smoke,
        plot={
            "kind": "bars",
            "label": "tenantgate frame (inclusive)",
            "value": "busy_pct",
            "unit": "% of busy samples",
        },
    )
    exe = py_spy()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        h = Harness(create_database(server, "prof"), tmp)
        ours, _ = _spread(h, 32)
        with tenantgate_server(h, tmp, 1) as srv:
            asyncio.run(_drive(srv, ours, 8, 1.0))  # warm: pool, caches, token verification
            pids = tree(srv.proc.pid)
            user0, system0 = user_system_seconds(pids)
            plain = asyncio.run(_drive(srv, ours, 8, seconds / 2))
            user1, system1 = user_system_seconds(pids)
            user, system = user1 - user0, system1 - system0
            kernel = system / max(1e-9, user + system)
            own.ratios["share of the mediator's CPU in the kernel (/proc, no profiler)"] = kernel
            own.notes.append(
                f"without the profiler, same run: {plain['calls_per_s']} calls/s, mediator CPU "
                f"{plain['server_cpu_ms']} ms per call, of which {100 * (1 - kernel):.0f}% user "
                f"(Python, psycopg, uvicorn) and {100 * kernel:.0f}% system (the kernel: sockets, "
                "epoll), from /proc"
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
    total, by_self, by_incl, layers = top_frames(collapsed)
    for name, count in by_self:
        own.rows.append(
            {"frame (self time)": name, "samples": count, "busy_pct": _pct(count, total)}
        )
    for name, count in by_incl:
        incl.rows.append(
            {"tenantgate frame (inclusive)": name, "samples": count, "busy_pct": _pct(count, total)}
        )
    syscalls = layers.get(LAYERS[0][0], 0)
    own.ratios["share of py-spy's busy samples in system calls (wall time, see notes)"] = (
        syscalls / max(1, total)
    )
    own.notes.append(
        "busy samples by layer (innermost frame): "
        + ", ".join(f"{name} {_pct(n, total)}%" for name, n in layers.items())
    )
    own.notes.append(
        f"{total} busy samples at {RATE} Hz while serving {loaded['calls_per_s']} calls/s "
        "(py-spy --native stops the worker for each sample, so it serves fewer)"
    )
    return [own, incl]


def _pct(count: int, total: int) -> float:
    return round(100 * count / max(1, total), 1)


def main() -> int:
    return run_script(__doc__, run)


if __name__ == "__main__":
    sys.exit(main())
