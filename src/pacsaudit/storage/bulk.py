"""Batch writes at driver speed, one strategy per backend, SQL still built by SQLAlchemy Core.

Per-row work in SQLAlchemy's generic executemany (parameter dicts, type processing, expanding
IN lists) costs more than the database does, so each backend gets the shape it is fastest
with, measured on this project's 2-core box with 1.2 kB census records:

- SQLite: the driver's own `executemany` (a C loop) for inserts; ids looked up by joining
  the endpoints index to `json_each` of one JSON parameter (3 µs a row, against 16 µs for a
  `(ip, port) IN (VALUES ...)` list).
- PostgreSQL: one `INSERT ... SELECT FROM unnest(array, array, ...)` per batch, arrays sent
  in binary (text-format arrays of JSON strings cost 120 µs a row to escape); ids by joining
  `unnest` too (a 1,000-row `(ip, port) IN` list takes 400 µs a row to plan and run).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.expression import ClauseElement

from pacsaudit.storage.schema import endpoints, observations

__all__ = ["BulkWriter", "bulk_writer"]

EndpointKey = tuple[str, int]


class BulkWriter:
    """Insert endpoints, look their ids up, and upsert observations, for one dialect."""

    def insert_endpoints(self, connection: Connection, keys: Sequence[EndpointKey]) -> None:
        raise NotImplementedError

    def endpoint_ids(self, connection: Connection, keys: Sequence[EndpointKey]) -> dict[EndpointKey, int]:
        raise NotImplementedError

    def detected_before(
        self, connection: Connection, scan_id: int, endpoint_ids: Sequence[int]
    ) -> dict[int, bool]:
        """`dicom_detected` of the endpoints already stored for this scan, by endpoint id."""
        raise NotImplementedError

    def upsert_observations(self, connection: Connection, rows: Sequence[Sequence[Any]]) -> None:
        """Rows in `columns` order; an existing (scan_id, endpoint_id) is replaced."""
        raise NotImplementedError


def bulk_writer(dialect: Dialect, columns: Sequence[str]) -> BulkWriter:
    if dialect.name == "sqlite":
        return _SqliteBulk(dialect, columns)
    if dialect.name == "postgresql":
        return _PostgresBulk(dialect, columns)
    raise ValueError(f"no bulk writer for {dialect.name!r}")


def _replaced(columns: Sequence[str]) -> list[str]:
    return [name for name in columns if name not in ("scan_id", "endpoint_id")]


class _SqliteBulk(BulkWriter):
    def __init__(self, dialect: Dialect, columns: Sequence[str]) -> None:
        self._endpoints = _Executemany(
            sqlite.insert(endpoints).on_conflict_do_nothing(index_elements=["ip", "port"]),
            ("ip", "port"),
            dialect,
        )
        upsert = sqlite.insert(observations)
        self._observations = _Executemany(
            upsert.on_conflict_do_update(
                index_elements=["scan_id", "endpoint_id"],
                set_={name: upsert.excluded[name] for name in _replaced(columns)},
            ),
            columns,
            dialect,
        )
        batch = sa.func.json_each(sa.bindparam("keys", type_=sa.String)).table_valued("value", name="batch")
        self._lookup = (
            sa.select(endpoints.c.ip, endpoints.c.port, endpoints.c.id)
            .select_from(batch)
            .join(
                endpoints,
                sa.and_(
                    endpoints.c.ip == sa.func.json_extract(batch.c.value, "$[0]"),
                    endpoints.c.port == sa.func.json_extract(batch.c.value, "$[1]"),
                ),
            )
        )

        ids = sa.func.json_each(sa.bindparam("ids", type_=sa.String)).table_valued("value", name="ids")
        # IN (subquery), not a join: with a join and no statistics SQLite may walk the whole
        # scan through the (scan_id, position) index for each id, quadratic in the scan size
        self._detected = sa.select(observations.c.endpoint_id, observations.c.dicom_detected).where(
            observations.c.scan_id == sa.bindparam("scan_id", type_=sa.BigInteger),
            observations.c.endpoint_id.in_(sa.select(ids.c.value)),
        )

    def insert_endpoints(self, connection: Connection, keys: Sequence[EndpointKey]) -> None:
        self._endpoints.execute(connection, keys)

    def detected_before(
        self, connection: Connection, scan_id: int, endpoint_ids: Sequence[int]
    ) -> dict[int, bool]:
        found = connection.execute(
            self._detected, {"scan_id": scan_id, "ids": json.dumps(list(endpoint_ids))}
        )
        return {int(endpoint_id): bool(detected) for endpoint_id, detected in found}

    def endpoint_ids(self, connection: Connection, keys: Sequence[EndpointKey]) -> dict[EndpointKey, int]:
        found = connection.execute(self._lookup, {"keys": json.dumps(keys)})
        return {(ip, port): int(id_) for ip, port, id_ in found}

    def upsert_observations(self, connection: Connection, rows: Sequence[Sequence[Any]]) -> None:
        self._observations.execute(connection, rows)


class _Executemany:
    """An INSERT compiled once and run with the driver's own `executemany`.

    Keeps SQLAlchemy's SQL and each column's bind processor (datetimes to text on SQLite),
    except the bool check: values are Python bools or None already.
    """

    def __init__(self, statement: sa.Insert, columns: Sequence[str], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(columns))
        if compiled.positiontup is None or tuple(compiled.positiontup) != tuple(columns):
            raise ValueError("expected positional parameters in column order (SQLite's qmark style)")
        self.sql = compiled.string
        table = statement.table
        assert isinstance(table, sa.Table)
        self._processors: list[tuple[int, Callable[[Any], Any]]] = []
        for index, name in enumerate(columns):
            column_type = table.c[name].type
            if isinstance(column_type, sa.Boolean):
                continue
            processor = column_type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self._processors.append((index, processor))

    def execute(self, connection: Connection, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        params: list[tuple[Any, ...]]
        if self._processors:
            params = []
            for row in rows:
                values = list(row)
                for index, processor in self._processors:
                    values[index] = processor(values[index])
                params.append(tuple(values))
        else:
            params = [row if isinstance(row, tuple) else tuple(row) for row in rows]
        connection.exec_driver_sql(self.sql, params)


class _PostgresBulk(BulkWriter):
    def __init__(self, dialect: Dialect, columns: Sequence[str]) -> None:
        self._columns = tuple(columns)
        keys = _unnest(endpoints, ("ip", "port"))
        self._endpoints = _binary(
            postgresql.insert(endpoints)
            .from_select(["ip", "port"], sa.select(*keys.c))
            .on_conflict_do_nothing(index_elements=["ip", "port"]),
            ("ip", "port"),
            dialect,
        )
        self._lookup = _binary(
            sa.select(endpoints.c.ip, endpoints.c.port, endpoints.c.id).join(
                keys, sa.and_(endpoints.c.ip == keys.c.ip, endpoints.c.port == keys.c.port)
            ),
            ("ip", "port"),
            dialect,
        )
        self._detected = _binary(
            sa.select(observations.c.endpoint_id, observations.c.dicom_detected).where(
                observations.c.scan_id == sa.bindparam("scan_id", type_=sa.BigInteger),
                observations.c.endpoint_id
                == sa.func.any(sa.cast(sa.bindparam("ids"), postgresql.ARRAY(sa.BigInteger))),
            ),
            ("ids",),
            dialect,
        )
        batch = _unnest(observations, self._columns)
        upsert = postgresql.insert(observations).from_select(list(self._columns), sa.select(*batch.c))
        self._observations = _binary(
            upsert.on_conflict_do_update(
                index_elements=["scan_id", "endpoint_id"],
                set_={name: upsert.excluded[name] for name in _replaced(columns)},
            ),
            self._columns,
            dialect,
        )

    def insert_endpoints(self, connection: Connection, keys: Sequence[EndpointKey]) -> None:
        if keys:
            ips, ports = zip(*keys, strict=True)
            connection.exec_driver_sql(self._endpoints, {"ip": list(ips), "port": list(ports)})

    def endpoint_ids(self, connection: Connection, keys: Sequence[EndpointKey]) -> dict[EndpointKey, int]:
        if not keys:
            return {}
        ips, ports = zip(*keys, strict=True)
        found = connection.exec_driver_sql(self._lookup, {"ip": list(ips), "port": list(ports)})
        return {(ip, port): int(id_) for ip, port, id_ in found}

    def detected_before(
        self, connection: Connection, scan_id: int, endpoint_ids: Sequence[int]
    ) -> dict[int, bool]:
        found = connection.exec_driver_sql(self._detected, {"scan_id": scan_id, "ids": list(endpoint_ids)})
        return {int(endpoint_id): bool(detected) for endpoint_id, detected in found}

    def upsert_observations(self, connection: Connection, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            arrays = zip(*rows, strict=True)
            params = {name: list(values) for name, values in zip(self._columns, arrays, strict=True)}
            connection.exec_driver_sql(self._observations, params)


def _unnest(table: sa.Table, columns: Sequence[str]) -> sa.TableValuedAlias:
    """`unnest(CAST(:a AS type[]), ...) AS batch(a, ...)`: one array parameter per column."""
    arrays = [sa.cast(sa.bindparam(name), postgresql.ARRAY(table.c[name].type)) for name in columns]
    return sa.func.unnest(*arrays).table_valued(*columns, name="batch").render_derived()


def _binary(statement: ClauseElement, parameters: Sequence[str], dialect: Dialect) -> str:
    """The statement's SQL with psycopg's binary placeholders (`%(name)b`) for the arrays."""
    sql = str(statement.compile(dialect=dialect))
    for name in parameters:
        placeholder = f"%({name})s"
        if placeholder not in sql:
            raise ValueError(f"parameter {name!r} not found in the compiled SQL")
        sql = sql.replace(placeholder, f"%({name})b")
    return sql
