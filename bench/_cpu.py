"""CPU seconds spent by process trees, read from /proc (Linux): where a call's time goes."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # fields after "(comm)": state is [0], ppid [1]


def tree(root: int) -> list[int]:
    """`root` and all its descendants alive now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of `pids` (threads included; exited ones are not counted)."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def user_system_seconds(pids: list[int]) -> tuple[float, float]:
    """(user, system) CPU seconds of `pids`: the process's own code vs the kernel on its behalf."""
    user = system = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            user += int(fields[11])
            system += int(fields[12])
    return user / TICK, system / TICK


def parent_of(pid: int) -> int:
    """The parent pid of `pid` (0 when unknown)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    return 0
