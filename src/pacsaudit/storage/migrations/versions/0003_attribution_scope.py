"""Observations get the address scope beside country and AS number, for grouping by owner.

`country` and `asn` exist since 0001 (left null until attribution came); `scope` (public,
private, loopback, ...) is new. Rows stored before attribution keep nulls in all three: reports
attribute those results from the stored address, with the same offline data.

Revision ID: 0003_attribution_scope
Revises: 0002_position_index
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_attribution_scope"
down_revision: str | None = "0002_position_index"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("observations", sa.Column("scope", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("observations") as batch:
        batch.drop_column("scope")
