"""Both backends, for real: a SQLite file per test, and a PostgreSQL database per session.

PostgreSQL is the local cluster on 127.0.0.1:5432 (trust auth, user postgres). If it is not
running, the fixture starts it with pg_ctlcluster; if it still cannot be reached the
PostgreSQL half of the tests is skipped, except under REQUIRE_PACS_SERVERS (`./run test`),
where it fails. Every database created here has a unique name and is dropped at the end.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pacsaudit.storage import ScanStore
from scanning import missing_software

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
BACKENDS = ("sqlite", "postgresql")


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True, connect_timeout=3
    )


def _reachable() -> bool:
    try:
        with _admin() as connection:
            connection.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def _start_cluster() -> None:
    """Debian's way: pg_ctlcluster <version> main start, for each installed version."""
    try:
        versions = sorted(os.listdir("/etc/postgresql"))
    except OSError:
        return
    for version in versions:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
            capture_output=True,
            timeout=120,
            check=False,
        )


class PostgresDatabases:
    """Creates uniquely named databases on the local cluster and drops them all at the end."""

    def __init__(self) -> None:
        self._created: list[str] = []

    def create(self) -> str:
        name = f"pacsaudit_test_{os.getpid()}_{uuid.uuid4().hex[:12]}"
        with _admin() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._created.append(name)
        return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with _admin() as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        if name in self._created:
            self._created.remove(name)

    def drop_all(self) -> None:
        for name in list(self._created):
            self.drop(f"/{name}")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresDatabases]:
    if not _reachable():
        _start_cluster()
        deadline = time.monotonic() + 30
        while not _reachable() and time.monotonic() < deadline:
            time.sleep(0.5)
        if not _reachable():
            missing_software(f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT}, even after pg_ctlcluster")
    databases = PostgresDatabases()
    try:
        yield databases
    finally:
        databases.drop_all()


@pytest.fixture(scope="session")
def postgres_session_url(postgres: PostgresDatabases) -> str:
    """One database for the whole session: tests keep to their own scans in it."""
    return postgres.create()


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL per backend: a new SQLite file, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'scans.db'}"
    return str(request.getfixturevalue("postgres_session_url"))


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it, per backend, for migration tests."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres")
    created = databases.create()
    try:
        yield created
    finally:
        databases.drop(created)


@pytest.fixture
def store(url: str) -> Iterator[ScanStore]:
    with ScanStore.open(url) as opened:
        yield opened


@pytest.fixture
def new_scan(store: ScanStore) -> Callable[..., int]:
    def create(**arguments: object) -> int:
        return store.create_scan(dict(arguments), targets_estimated=None, tool_version="test")

    return create
