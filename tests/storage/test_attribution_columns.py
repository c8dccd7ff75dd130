"""Attribution stored with the observation: country, AS number and scope as query columns, on
both backends; revision 0003 adds `scope` to a database at 0002 and keeps its rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

from pacsaudit.model import Attribution
from pacsaudit.storage import ScanStore
from pacsaudit.storage.backends import create_engine, migrate
from pacsaudit.storage.schema import endpoints, observations

from .synthetic import synthetic_result

NewScan = Callable[..., int]


def _columns(store: ScanStore, scan_id: int) -> dict[str, tuple[object, object, object]]:
    query = (
        sa.select(endpoints.c.ip, observations.c.country, observations.c.asn, observations.c.scope)
        .join(endpoints, endpoints.c.id == observations.c.endpoint_id)
        .where(observations.c.scan_id == scan_id)
    )
    with store.engine.connect() as connection:
        return {ip: (country, asn, scope) for ip, country, asn, scope in connection.execute(query)}


def test_attribution_fills_the_query_columns(store: ScanStore, new_scan: NewScan) -> None:
    scan_id = new_scan()
    attributed = synthetic_result(0)
    attributed.attribution = Attribution(scope="public", country="NL", asn=3333, as_org="RIPE NCC")
    private = synthetic_result(1)
    private.attribution = Attribution(scope="private")
    unattributed = synthetic_result(2)
    # an imported file may carry anything: values that do not fit their columns are left out
    hostile = synthetic_result(3)
    hostile.attribution = Attribution(scope="public", country="Netherlands", asn=2**40)
    newline = synthetic_result(4)
    newline.attribution = Attribution(scope="public", country="NL\n", asn=-1)
    results = [attributed, private, unattributed, hostile, newline]
    store.write_batch(scan_id, list(enumerate(results)), low_water_mark=5, endpoints_done=5)

    columns = _columns(store, scan_id)
    assert columns[attributed.ip] == ("NL", 3333, "public")
    assert columns[private.ip] == (None, None, "private")
    assert columns[unattributed.ip] == (None, None, None)
    assert columns[hostile.ip] == (None, None, "public")
    assert columns[newline.ip] == (None, None, "public")
    # the document keeps what the result said, whole
    stored = {r.ip: r for r in store.observations(scan_id)}
    assert stored[attributed.ip].attribution == attributed.attribution
    assert stored[hostile.ip].attribution == hostile.attribution


def test_upgrade_from_0002_adds_scope_and_keeps_rows(empty_url: str) -> None:
    engine = create_engine(empty_url)
    try:
        migrate(engine, "0002_position_index")
        result = synthetic_result(0)
        with engine.begin() as connection:
            tables = sa.MetaData()
            tables.reflect(connection)
            assert "scope" not in tables.tables["observations"].c
            scan_id = connection.execute(
                tables.tables["scans"]
                .insert()
                .values(started_at=datetime(2026, 1, 1, tzinfo=UTC), state="finished", arguments={},
                        tool_version="0.1.0")
                .returning(tables.tables["scans"].c.id)
            ).scalar_one()  # fmt: skip
            endpoint_id = connection.execute(
                tables.tables["endpoints"]
                .insert()
                .values(ip=result.ip, port=result.port)
                .returning(tables.tables["endpoints"].c.id)
            ).scalar_one()
            connection.execute(
                tables.tables["observations"]
                .insert()
                .values(scan_id=scan_id, endpoint_id=endpoint_id, position=0, status="success",
                        dicom_detected=True, result=result.model_dump(mode="json"))
            )  # fmt: skip
    finally:
        engine.dispose()
    with ScanStore.open(empty_url) as store:
        assert "scope" in {c["name"] for c in sa.inspect(store.engine).get_columns("observations")}
        assert list(store.observations(scan_id)) == [result]
        assert _columns(store, scan_id) == {result.ip: (None, None, None)}
