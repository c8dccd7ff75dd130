"""Alembic owns the schema: from empty to head, from the previous revision to head, and the
run-time table definitions agree with what the migrations build, on both backends."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from fnmatch import fnmatch
from importlib.resources import files
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from pacsaudit.storage import ScanStore, StorageError
from pacsaudit.storage.backends import VERSION_TABLE, create_engine, head_revision, migrate
from pacsaudit.storage.schema import metadata

from .synthetic import synthetic_result

PREVIOUS = "0001_initial"
ROOT = Path(__file__).resolve().parents[2]


def _revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def _indexes(engine: sa.Engine) -> set[str]:
    return {index["name"] for index in sa.inspect(engine).get_indexes("observations") if index["name"]}


def test_head_is_the_third_revision() -> None:
    assert head_revision() == "0003_attribution_scope"


def test_open_migrates_an_empty_database_to_head(empty_url: str) -> None:
    with ScanStore.open(empty_url) as store:
        assert _revision(store.engine) == head_revision()
        assert {"scans", "endpoints", "observations", VERSION_TABLE} <= set(
            sa.inspect(store.engine).get_table_names()
        )
        assert "ix_observations_scan_id_position" in _indexes(store.engine)
    # opening again is a no-op
    with ScanStore.open(empty_url) as store:
        assert _revision(store.engine) == head_revision()


def test_upgrade_from_the_previous_revision_keeps_the_data(empty_url: str) -> None:
    # Given a database at 0001 holding a scan written with 0001's schema
    engine = create_engine(empty_url)
    try:
        migrate(engine, PREVIOUS)
        assert _revision(engine) == PREVIOUS
        assert "ix_observations_scan_id_position" not in _indexes(engine)
        result = synthetic_result(0)
        with engine.begin() as connection:
            tables = sa.MetaData()
            tables.reflect(connection)
            scan_id = connection.execute(
                tables.tables["scans"]
                .insert()
                .values(
                    started_at=datetime(2026, 1, 1, tzinfo=UTC),
                    state="finished",
                    arguments={"targets": ["127.0.0.1"]},
                    tool_version="0.0.1",
                )
                .returning(tables.tables["scans"].c.id)
            ).scalar_one()
            endpoint_id = connection.execute(
                tables.tables["endpoints"]
                .insert()
                .values(ip=result.ip, port=result.port)
                .returning(tables.tables["endpoints"].c.id)
            ).scalar_one()
            connection.execute(
                tables.tables["observations"]
                .insert()
                .values(
                    scan_id=scan_id,
                    endpoint_id=endpoint_id,
                    position=0,
                    status="success",
                    dicom_detected=True,
                    result=result.model_dump(mode="json"),
                )
            )
    finally:
        engine.dispose()
    # When pacsaudit opens it
    with ScanStore.open(empty_url) as store:
        # Then it is at head, with the new index, and the old scan reads back whole
        assert _revision(store.engine) == head_revision()
        assert "ix_observations_scan_id_position" in _indexes(store.engine)
        assert list(store.observations(scan_id)) == [result]
        assert store.observed_positions(scan_id, 0) == {0}


def test_tables_match_the_migrations(empty_url: str) -> None:
    with ScanStore.open(empty_url) as store, store.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE, "compare_type": True}
        )
        assert compare_metadata(context, metadata) == []


def test_a_newer_schema_is_refused(empty_url: str) -> None:
    ScanStore.open(empty_url).close()
    engine = create_engine(empty_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '0099_from_the_future'"))
    finally:
        engine.dispose()
    with pytest.raises(StorageError, match="newer than this pacsaudit"):
        ScanStore.open(empty_url)


def test_unsupported_urls_are_refused() -> None:
    with pytest.raises(StorageError, match="unsupported"):
        ScanStore.open("mysql://localhost/x")
    with pytest.raises(StorageError, match="not a database URL"):
        ScanStore.open("pacsaudit.db")


def test_migration_scripts_ship_in_the_package() -> None:
    """`pip install .` must carry env.py and versions/*.py: found via importlib.resources,
    and covered by pyproject's package-data globs."""
    migrations = files("pacsaudit.storage") / "migrations"
    shipped = [
        "env.py",
        "script.py.mako",
        *(f"versions/{p.name}" for p in migrations.joinpath("versions").iterdir() if p.name.endswith(".py")),
    ]
    assert len(shipped) >= 4
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "pacsaudit"
    ]
    for name in shipped:
        path = f"storage/migrations/{name}"
        assert any(fnmatch(path, pattern) for pattern in globs), f"{path} not in package-data"
