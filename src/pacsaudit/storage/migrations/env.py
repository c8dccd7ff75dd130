"""Alembic environment: runs on the connection `ScanStore.open` hands over, in its transaction.

There is no alembic.ini: `pacsaudit.storage.backends.migrate` builds the configuration in code
and finds this directory with importlib.resources, so an installed package migrates its own
database. A new revision is a new file in `versions/` (ids `NNNN_what`, `down_revision` the
previous head) plus the matching change in `schema.py`; a test checks the two agree.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from pacsaudit.storage.backends import VERSION_TABLE
from pacsaudit.storage.schema import metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("pacsaudit migrations run only through pacsaudit.storage (no alembic.ini)")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("pacsaudit migrations do not support offline (SQL script) mode")
run_migrations_online()
