"""Process hardening at start: no core dumps, not dumpable (no ptrace or /proc/pid/mem peeking)."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import resource
import sys

logger = logging.getLogger("tenantgate.hardening")

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def harden() -> dict[str, bool]:
    """Apply what the OS allows; log one clear line for anything it refuses."""
    done = {"no_core_dumps": False, "not_dumpable": False}
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        done["no_core_dumps"] = True
    except (ValueError, OSError) as exc:
        logger.warning("hardening: cannot disable core dumps: %s", exc)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE) failed")
            done["not_dumpable"] = libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0
        except OSError as exc:
            logger.warning("hardening: cannot mark the process not dumpable: %s", exc)
    else:
        logger.warning(
            "hardening: not-dumpable is Linux only; ptrace protection not applied on %s",
            sys.platform,
        )
    if all(done.values()):
        logger.info("hardening: core dumps off, process not dumpable")
    return done


def is_dumpable() -> bool:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return bool(libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))
