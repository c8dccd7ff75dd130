"""From a URL to a migrated SQLAlchemy engine: SQLite (the default) or PostgreSQL, same code.

SQLite gets WAL (readers never block the writer, nor it them), `synchronous=NORMAL` (durable
at each checkpoint, and a crash loses at most the last transactions, never consistency),
foreign keys on, and real transactions: Python's sqlite3 module would otherwise commit before
DDL and start transactions only at the first write, so a migration would not be atomic and a
read would not be a snapshot. Writers start with BEGIN IMMEDIATE, so they queue on the busy
timeout instead of failing on a stale read snapshot.
"""

from __future__ import annotations

from importlib.resources import as_file, files
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError

from pacsaudit.storage.states import StorageError

__all__ = ["WRITE", "StorageError", "create_engine", "head_revision", "migrate"]

WRITE = {"pacsaudit_write": True}
"""Execution options of a connection that will write: on SQLite it begins IMMEDIATE."""

SQLITE_BUSY_TIMEOUT_S = 60.0
"""How long a SQLite writer waits for another writer's transaction before giving up."""

_MIGRATION_LOCK = 0x70616373
"""PostgreSQL advisory lock key held while migrating, so concurrent opens migrate once."""

VERSION_TABLE = "pacsaudit_alembic_version"


def create_engine(url: str) -> Engine:
    """An engine for `url`; `postgresql://` without a driver means psycopg 3 (the one we ship)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StorageError(f"not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return sa.create_engine(parsed, pool_pre_ping=True)
    raise StorageError(f"unsupported database {backend!r}: use sqlite:///file.db or postgresql+psycopg://...")


def _sqlite_engine(url: URL) -> Engine:
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    in_memory = url.database in (None, "", ":memory:")

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get("pacsaudit_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _alembic_config(connection: Connection, script_location: str) -> Config:
    config = Config()
    config.set_main_option("script_location", script_location)
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` in one transaction; a no-op when it is already there."""
    with (
        as_file(files("pacsaudit.storage") / "migrations") as location,
        engine.connect().execution_options(**WRITE) as connection,
        connection.begin(),
    ):
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        config = _alembic_config(connection, str(location))
        script = ScriptDirectory.from_config(config)
        current = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE}
        ).get_current_heads()
        known = {rev.revision for rev in script.walk_revisions()}
        unknown = [rev for rev in current if rev not in known]
        if unknown:
            raise StorageError(
                f"the database schema is at revision {', '.join(unknown)}, newer than this "
                "pacsaudit knows: upgrade pacsaudit to open it"
            )
        command.upgrade(config, revision)


def head_revision() -> str:
    """The newest schema revision this pacsaudit ships."""
    with as_file(files("pacsaudit.storage") / "migrations") as location:
        config = Config()
        config.set_main_option("script_location", str(location))
        head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head
