"""A throwaway PgBouncer (Debian's package) in transaction mode in front of a test server.

PgBouncer refuses to run as root; as root (CI) it runs as the same unprivileged user as the
throwaway PostgreSQL, from a folder that user owns.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tenantgate.cli import pgserver


def binary() -> str | None:
    """The pgbouncer executable, or None when the package is not installed."""
    return shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").is_file() else None
    )


@dataclass
class Bouncer:
    """A running PgBouncer: where clients connect."""

    host: str
    port: int
    upstream: pgserver.RunningServer
    log: Path
    pid: int = 0  # the process started for it (runuser's as root, whose child is pgbouncer)

    def dsn(self, dbname: str, user: str, password: str) -> str:
        return self.upstream.dsn(
            dbname, user=user, password=password, host=self.host, port=str(self.port)
        )


def _as_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    known = subprocess.run(["id", "-u", pgserver.SERVER_USER], capture_output=True, check=False)
    if known.returncode != 0:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                pgserver.SERVER_USER,
            ],
            capture_output=True,
            check=True,
        )
    return ["runuser", "-u", pgserver.SERVER_USER, "--", *command]


def _folder() -> Path:
    if os.geteuid() == 0:
        pgserver.ROOT_WORK_BASE.mkdir(parents=True, exist_ok=True)
        pgserver.ROOT_WORK_BASE.chmod(0o755)
        path = Path(tempfile.mkdtemp(prefix="pgbouncer-", dir=pgserver.ROOT_WORK_BASE))
        _as_user(["true"])  # make sure the user exists before chown
        shutil.chown(path, user=pgserver.SERVER_USER)
    else:
        path = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    path.chmod(0o700)
    return path


@contextlib.contextmanager
def pgbouncer(
    server: pgserver.RunningServer, users: dict[str, str], pool_size: int = 4
) -> Iterator[Bouncer]:
    """Run PgBouncer in transaction mode for `users` (name -> password) until the block ends."""
    exe = binary()
    if exe is None:
        raise RuntimeError("pgbouncer is not installed (Debian package pgbouncer)")
    home = _folder()
    port = pgserver.free_port()
    userlist = "".join(f'"{u}" "{p}"\n' for u, p in users.items())
    (home / "userlist.txt").write_text(userlist)
    (home / "pgbouncer.ini").write_text(f"""[databases]
* = host={server.host} port={server.port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = plain
auth_file = {home}/userlist.txt
pool_mode = transaction
default_pool_size = {pool_size}
min_pool_size = 0
max_client_conn = 1000
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
logfile = {home}/pgbouncer.log
pidfile = {home}/pgbouncer.pid
""")
    if os.geteuid() == 0:
        for name in ("userlist.txt", "pgbouncer.ini"):
            shutil.chown(home / name, user=pgserver.SERVER_USER)
    proc = subprocess.Popen(
        _as_user([exe, str(home / "pgbouncer.ini")]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"pgbouncer did not start: {err[-500:]}")
            time.sleep(0.05)
        yield Bouncer("127.0.0.1", port, server, home / "pgbouncer.log", proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()
        shutil.rmtree(home, ignore_errors=True)
