"""The tables, as SQLAlchemy Core sees them at run time.

Alembic owns the schema (`migrations/versions/`); these definitions must describe the head
revision exactly, and a test compares the two on both backends. Three tables:

- `scans`: one row per scan, with what is needed to resume it (`arguments`, `low_water_mark`);
- `endpoints`: one row per (ip, port) ever stored, shared by every scan, so a diff joins on ids;
- `observations`: one row per endpoint per scan: query columns copied out of the result, and
  the full `EndpointResult` as JSON, which stays the record of truth.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = [
    "SCAN_STATES",
    "ResultDocument",
    "endpoints",
    "metadata",
    "observations",
    "scans",
]

SCAN_STATES = ("running", "finished", "interrupted", "failed")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Named constraints, so that later SQLite migrations (batch mode, table copies) can find them."""


def address_type() -> sa.types.TypeEngine[str]:
    """Text compared byte by byte on PostgreSQL too, so `ORDER BY ip` matches SQLite and Python."""
    return sa.String().with_variant(sa.String(collation="C"), "postgresql")


def id_type() -> sa.types.TypeEngine[int]:
    """64-bit ids on PostgreSQL; SQLite's rowid alias must be spelt INTEGER to autoincrement."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class ResultDocument(sa.types.TypeDecorator[str]):
    """A JSON column written and read as the text pydantic produced and will parse.

    Serialising once with `model_dump_json` (pydantic-core, ~13 µs per census record) and
    handing the text straight to the driver is half the cost of `model_dump` + `json.dumps`.
    PostgreSQL keeps `json` (not `jsonb`) text verbatim and, unlike `jsonb`, accepts `\\u0000`,
    which a hostile peer can put in any string it sends us. Reads cast to text so both
    backends give back a string for `model_validate_json`.
    """

    impl = sa.JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:
        return None

    def result_processor(self, dialect: Dialect, coltype: object) -> None:
        return None

    def column_expression(self, colexpr: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
        return sa.cast(colexpr, sa.Text)


metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

scans = sa.Table(
    "scans",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("arguments", sa.JSON(), nullable=False),
    sa.Column("tool_version", sa.String(), nullable=False),
    sa.Column("targets_estimated", sa.BigInteger(), nullable=True),
    sa.Column("low_water_mark", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("endpoints_done", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("dicom_found", sa.BigInteger(), nullable=False, server_default="0"),
    sa.CheckConstraint("state IN ('running', 'finished', 'interrupted', 'failed')", name="state"),
)

endpoints = sa.Table(
    "endpoints",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("ip", address_type(), nullable=False),
    sa.Column("port", sa.Integer(), nullable=False),
    sa.UniqueConstraint("ip", "port"),
)

observations = sa.Table(
    "observations",
    metadata,
    sa.Column("scan_id", id_type(), sa.ForeignKey("scans.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("endpoint_id", id_type(), sa.ForeignKey("endpoints.id"), primary_key=True),
    sa.Column("position", sa.BigInteger(), nullable=True),
    sa.Column("observed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("dicom_detected", sa.Boolean(), nullable=False),
    sa.Column("association", sa.String(16), nullable=True),
    sa.Column("open_to_any_ae", sa.Boolean(), nullable=True),
    sa.Column("called_ae_check", sa.Boolean(), nullable=True),
    sa.Column("calling_ae_check", sa.Boolean(), nullable=True),
    sa.Column("product", sa.String(), nullable=True),
    sa.Column("version", sa.String(), nullable=True),
    sa.Column("service_find", sa.Boolean(), nullable=True),
    sa.Column("service_move", sa.Boolean(), nullable=True),
    sa.Column("service_get", sa.Boolean(), nullable=True),
    sa.Column("service_store", sa.Boolean(), nullable=True),
    sa.Column("patients", sa.BigInteger(), nullable=True),
    sa.Column("studies", sa.BigInteger(), nullable=True),
    sa.Column("series", sa.BigInteger(), nullable=True),
    sa.Column("instances", sa.BigInteger(), nullable=True),
    sa.Column("counts_complete", sa.Boolean(), nullable=True),
    sa.Column("ssn_shaped", sa.BigInteger(), nullable=True),
    sa.Column("country", sa.String(2), nullable=True),
    sa.Column("asn", sa.BigInteger(), nullable=True),
    sa.Column("result", ResultDocument(), nullable=False),
    sa.Column("scope", sa.String(16), nullable=True),
    sa.Index("ix_observations_scan_id_dicom_detected", "scan_id", "dicom_detected"),
    sa.Index("ix_observations_endpoint_id", "endpoint_id"),
    sa.Index("ix_observations_product", "product"),
    sa.Index("ix_observations_scan_id_position", "scan_id", "position"),
)
