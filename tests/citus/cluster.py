"""A throwaway Citus cluster: a coordinator and two workers on loopback, as an unprivileged user.

Each node is a private Debian PostgreSQL 15 server (tenantgate/cli/pgserver.py) started with
`shared_preload_libraries = 'citus'`. The cluster is migrated the way the README tells a DBA to:
`tenantgate db upgrade` on the coordinator (it sees a Citus coordinator not distributed yet and
migrates with DDL propagation off by itself), then `db distribute`.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from tenantgate.cli import pgserver
from tenantgate.cli.demo_schema import install_demo
from tests.cli.conftest import ok, run
from tests.pg import TestDatabase

DATABASE = "tenantgate"
NODE_CONFIG = {"shared_preload_libraries": "citus", "max_connections": "300",
               "citus.max_client_connections": "250", "citus.enable_stat_counters": "on"}


def citus_missing() -> str | None:
    """Why no cluster can start here, or None when Debian's PostgreSQL 15 has citus.so."""
    bindir = pgserver.system_bindir()
    if bindir is None:
        return "no system PostgreSQL server (pg_config --bindir has no initdb)"
    done = subprocess.run([str(bindir / "pg_config"), "--pkglibdir"], capture_output=True,
                          text=True, check=False)
    libdir = Path(done.stdout.strip() or "/usr/lib/postgresql/15/lib")
    if not (libdir / "citus.so").is_file():
        return (f"no citus.so in {libdir}: install Citus with `bash ../shared/citus/build.sh` "
                "(as root), then run `make test-citus`")
    return None


@dataclass
class Cluster:
    """The running nodes and the migrated, distributed database on the coordinator."""

    coordinator: pgserver.RunningServer
    workers: list[pgserver.RunningServer]
    reviewed_sql: str = ""  # what `db distribute --sql` printed before the distribution ran
    distributed: tuple[str, str] = ("", "")  # what `db distribute` printed (stdout, stderr)
    upgraded: str = ""  # what `db upgrade` printed on stderr

    @property
    def nodes(self) -> list[pgserver.RunningServer]:
        return [self.coordinator, *self.workers]

    @property
    def database(self) -> TestDatabase:
        return TestDatabase(self.coordinator, DATABASE)

    def node_of(self, conn: psycopg.Connection[tuple[object, ...]], org_id: object) -> int:
        """The port of the worker that holds an org's rows."""
        row = conn.execute(
            "select p.nodeport from pg_dist_placement pl join pg_dist_node p on p.groupid ="
            " pl.groupid where pl.shardid = get_shard_id_for_distribution_column("
            "'tenantgate.audit_heads', %s::uuid)", (str(org_id),)).fetchone()
        assert row is not None
        return int(row[0])


def counters(cluster: Cluster, name: str = DATABASE) -> dict[int, tuple[int, int, int]]:
    """Per node port: connections opened, single- and multi-shard executions so far
    (citus_stat_counters of database `name`; `citus.enable_stat_counters` is on)."""
    out = {}
    for node in cluster.nodes:
        with psycopg.connect(node.dsn(name), autocommit=True) as conn:
            row = conn.execute("select connection_establishment_succeeded,"
                               " query_execution_single_shard, query_execution_multi_shard"
                               " from citus_stat_counters where name = current_database()"
                               ).fetchone()
        out[node.port] = (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)
    return out


def _create_database(node: pgserver.RunningServer, name: str = DATABASE) -> None:
    with psycopg.connect(node.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    with psycopg.connect(node.dsn(name), autocommit=True) as conn:
        conn.execute("create extension citus")


def _join(coordinator: pgserver.RunningServer, workers: list[pgserver.RunningServer],
          name: str) -> None:
    """Make `name` on the coordinator a Citus coordinator of the same database on the workers."""
    with psycopg.connect(coordinator.dsn(name), autocommit=True) as conn:
        conn.execute("select citus_set_coordinator_host('127.0.0.1', %s)", (coordinator.port,))
        for worker in workers:
            conn.execute("select citus_add_node('127.0.0.1', %s)", (worker.port,))


def new_database(cluster: Cluster, name: str) -> TestDatabase:
    """Another empty Citus database on the same nodes: a coordinator with both workers, nothing
    migrated (a single-node install about to scale out, or a cluster's first `db upgrade`)."""
    for node in cluster.nodes:
        _create_database(node, name)
    _join(cluster.coordinator, cluster.workers, name)
    return TestDatabase(cluster.coordinator, name)


def migrate_and_install_demo(coordinator: pgserver.RunningServer, name: str,
                             revision: str = "head") -> str:
    """`tenantgate db upgrade` as a DBA runs it (no Citus setting to remember), then the demo
    schema and tools/demo.yaml as the tests' template has them; what the upgrade said."""
    upgraded = ok(run(["db", "upgrade", revision], dsn=coordinator.dsn(name))).stderr
    with psycopg.connect(coordinator.dsn(name), autocommit=True,
                         options="-c citus.enable_ddl_propagation=off") as conn:
        install_demo(conn)  # the tests' own set-up: its sql files act as the NOLOGIN owner
    return upgraded


@contextlib.contextmanager
def running_cluster(workers: int = 2) -> Iterator[Cluster]:
    """Start, join, migrate and distribute; stop every node afterwards."""
    nodes: list[pgserver.RunningServer] = []
    try:
        for _ in range(workers + 1):
            nodes.append(pgserver.start_system(NODE_CONFIG))
        for node in nodes:
            _create_database(node)
        coordinator = nodes[0]
        _join(coordinator, nodes[1:], DATABASE)
        upgraded = migrate_and_install_demo(coordinator, DATABASE)
        yield Cluster(coordinator, nodes[1:], upgraded=upgraded)
    finally:
        for node in nodes:
            node.stop()
