"""Scans, endpoints and one observation per endpoint per scan.

Revision ID: 0001_initial
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _address() -> sa.types.TypeEngine[str]:
    return sa.String().with_variant(sa.String(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "scans",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("arguments", sa.JSON(), nullable=False),
        sa.Column("tool_version", sa.String(), nullable=False),
        sa.Column("targets_estimated", sa.BigInteger(), nullable=True),
        sa.Column("low_water_mark", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("endpoints_done", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("dicom_found", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_scans"),
        sa.CheckConstraint(
            "state IN ('running', 'finished', 'interrupted', 'failed')", name="ck_scans_state"
        ),
    )
    op.create_table(
        "endpoints",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("ip", _address(), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_endpoints"),
        sa.UniqueConstraint("ip", "port", name="uq_endpoints_ip_port"),
    )
    op.create_table(
        "observations",
        sa.Column("scan_id", _id(), nullable=False),
        sa.Column("endpoint_id", _id(), nullable=False),
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
        sa.Column("result", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("scan_id", "endpoint_id", name="pk_observations"),
        sa.ForeignKeyConstraint(
            ["scan_id"], ["scans.id"], name="fk_observations_scan_id_scans", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"], ["endpoints.id"], name="fk_observations_endpoint_id_endpoints"
        ),
    )
    op.create_index("ix_observations_scan_id_dicom_detected", "observations", ["scan_id", "dicom_detected"])
    op.create_index("ix_observations_endpoint_id", "observations", ["endpoint_id"])
    op.create_index("ix_observations_product", "observations", ["product"])


def downgrade() -> None:
    op.drop_table("observations")
    op.drop_table("endpoints")
    op.drop_table("scans")
