"""Index observations by (scan, stream position), for resume.

`ScanStore.observed_positions` asks which endpoints of a scan are already stored at or after
its low-water mark; without this index that is a scan of every observation of the scan.

Revision ID: 0002_position_index
Revises: 0001_initial
"""

from __future__ import annotations

from alembic import op

revision: str = "0002_position_index"
down_revision: str | None = "0001_initial"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_observations_scan_id_position", "observations", ["scan_id", "position"])


def downgrade() -> None:
    op.drop_index("ix_observations_scan_id_position", table_name="observations")
