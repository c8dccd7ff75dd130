"""The built-in lab is well declared, starts, answers as it says it will, and stops cleanly."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import socket
import ssl
from collections import Counter

import pytest
from lab_helpers import Outcome, associate, associate_rq, close, read_to_eof, run
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION

from pacsaudit.lab import (
    LAB_FLEET,
    HostileKind,
    LabMember,
    PacsPolicy,
    SimulatedPacs,
    many_members,
    start_fleet,
    start_fleet_in_thread,
    start_many,
)
from pacsaudit.lab.web import WebPolicy
from pacsaudit.model import Status

STRANGER_CALLED = "PAQZXWVUTSRK"  # nobody's AE title, as a scanner's stranger test uses


def _member(name: str) -> LabMember:
    (member,) = [m for m in LAB_FLEET if m.name == name]
    return member


def _policies() -> list[tuple[LabMember, PacsPolicy]]:
    return [(m, m.behaviour) for m in LAB_FLEET if isinstance(m.behaviour, PacsPolicy)]


def test_lab_fleet_is_well_declared() -> None:
    endpoints = Counter((m.host, m.port) for m in LAB_FLEET)
    assert max(endpoints.values()) == 1, "two members on one endpoint"
    assert len({m.name for m in LAB_FLEET}) == len(LAB_FLEET)
    assert all(ipaddress.ip_address(m.host) in ipaddress.ip_network("127.77.0.0/24") for m in LAB_FLEET)
    assert all(m.port >= 1024 for m in LAB_FLEET), "ports below 1024 need root"
    assert {m.behaviour for m in LAB_FLEET if isinstance(m.behaviour, HostileKind)} == set(HostileKind)
    assert all(m.description and m.expected for m in LAB_FLEET)


def test_lab_fleet_has_dictionary_titles_and_one_no_dictionary_holds() -> None:
    called = {title for _, policy in _policies() for title in policy.called_aets or ()}
    assert {"ORTHANC", "DCM4CHEE", "ARCHIVE"} <= called
    assert "RAD7Q2XV" in called  # the one a dictionary cannot find
    assert _member("secret-title").expected_association == "rejected"


def test_lab_fleet_impersonates_real_implementations() -> None:
    identities = {(p.implementation_class_uid, p.implementation_version_name) for _, p in _policies()}
    assert ("1.2.276.0.7230010.3.0.3.6.7", "OFFIS_DCMTK_367") in identities
    assert ("1.2.40.0.13.1.3", "dcm4che-5.31.0") in identities
    assert (str(PYNETDICOM_IMPLEMENTATION_UID), PYNETDICOM_IMPLEMENTATION_VERSION) in identities
    assert len({uid for uid, _ in identities}) >= 6


def test_lab_fleet_expectations_are_consistent_with_the_behaviours() -> None:
    for member, policy in _policies():
        assert member.expected_status is Status.SUCCESS
        checks_titles = policy.called_aets is not None or policy.calling_aets is not None
        if member.expected_open_to_any_ae:
            assert not checks_titles and policy.reject_all is None and not policy.abort_on_associate
        if checks_titles:
            assert member.expected_open_to_any_ae is False, member.name
        if member.expected_called_ae is not None:
            assert policy.called_aets is not None and member.expected_called_ae in policy.called_aets
    statuses = {m.behaviour: m.expected_status for m in LAB_FLEET if isinstance(m.behaviour, HostileKind)}
    assert statuses[HostileKind.RST] is Status.CONNECTION_RESET
    assert statuses[HostileKind.IMMEDIATE_CLOSE] is Status.CONNECTION_CLOSED
    assert statuses[HostileKind.TARPIT] is Status.IO_TIMEOUT


async def _get(host: str, port: int, path: str) -> bytes:
    """The head of the answer to a bare HTTP/1.1 GET."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    await close(writer)
    return head


def _outcome_word(outcome: Outcome) -> str | None:
    if outcome.established:
        return "accepted"
    if outcome.rejected:
        return "rejected"
    if outcome.aborted:
        return "aborted"
    return None


def _probe(member: LabMember, host: str, port: int) -> Outcome:
    """What a careful scanner would do: its best title, and one polite retry after a busy reject."""
    called = member.expected_called_ae or STRANGER_CALLED
    outcome = associate(host, port, called, "PACSAUDIT")
    if outcome.reject is not None and outcome.reject[0] == 2:
        retry = associate(host, port, called, "PACSAUDIT")
        if not member.expected_transient:
            return retry
        assert retry.reject == (2, 3, 2), member.name
    return outcome


def test_fleet_starts_and_every_member_answers_as_expected() -> None:
    async def body() -> None:
        async with await start_fleet(any_port=True) as fleet:
            assert [m for m, _, _ in fleet.endpoints] == list(LAB_FLEET)
            for member, host, port in fleet.endpoints:
                assert host == member.host
                if isinstance(member.behaviour, HostileKind):
                    _, writer = await asyncio.open_connection(host, port)  # reachable
                    await close(writer)
                    continue
                if isinstance(member.behaviour, WebPolicy):
                    head = await _get(host, port, "/system")
                    expected = b"401" if member.expected_auth_required else b"200"
                    assert head.split(b" ")[1] == expected and b"Server: Orthanc" in head, member.name
                    continue
                if member.tls:
                    insecure = ssl.create_default_context()
                    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
                    _, writer = await asyncio.open_connection(host, port, ssl=insecure)
                    assert writer.get_extra_info("ssl_object").version().startswith("TLS"), member.name
                    await close(writer)
                    continue
                outcome = await asyncio.to_thread(_probe, member, host, port)
                assert _outcome_word(outcome) == member.expected_association, member.name
                if member.expected_transient:
                    assert outcome.reject == (2, 3, 2)
                if outcome.established:
                    assert outcome.implementation_class_uid == member.behaviour.implementation_class_uid
            await asyncio.sleep(0.05)
            hostile_connections = [
                s.connections for m, s in fleet.servers if isinstance(m.behaviour, HostileKind)
            ]
            assert hostile_connections == [1] * len(HostileKind)

    run(body, timeout=60)


def test_fleet_listens_on_its_declared_addresses_then_frees_them() -> None:
    async def body() -> None:
        members = [_member("orthanc"), _member("http")]
        async with await start_fleet(members) as fleet:
            assert [(h, p) for _, h, p in fleet.endpoints] == [("127.77.0.10", 4242), ("127.77.0.45", 4242)]
            outcome = await asyncio.to_thread(associate, "127.77.0.10", 4242, STRANGER_CALLED)
            assert outcome.established and outcome.echo_status == 0
            reader, writer = await asyncio.open_connection("127.77.0.45", 4242)
            writer.write(associate_rq())
            assert (await read_to_eof(reader)).startswith(b"HTTP/1.1 400")
            await close(writer)
        for host, port in [("127.77.0.10", 4242), ("127.77.0.45", 4242)]:
            with pytest.raises(OSError):
                await asyncio.open_connection(host, port)

    run(body)


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def test_start_fleet_closes_what_it_started_when_a_member_cannot_start() -> None:
    async def body() -> None:
        first = dataclasses.replace(_member("orthanc"), host="127.77.2.1", port=_free_port("127.77.2.1"))
        with socket.socket() as blocker:
            blocker.bind(("127.77.2.2", 0))
            blocker.listen()
            taken = dataclasses.replace(_member("http"), host="127.77.2.2", port=blocker.getsockname()[1])
            with pytest.raises(OSError):
                await start_fleet([first, taken])
        with pytest.raises(ConnectionRefusedError):  # the member that did start was closed again
            await asyncio.open_connection(first.host, first.port)

    run(body)


def test_threaded_fleet_serves_a_client_in_the_main_thread_and_joins_on_exit() -> None:
    members = [_member("dcm4chee-arc"), _member("immediate-close")]
    with start_fleet_in_thread(members, any_port=True) as fleet:
        (archive, host, port), (_, close_host, close_port) = fleet.endpoints
        assert archive.name == "dcm4chee-arc"
        good = associate(host, port, "DCM4CHEE", "PACSAUDIT")
        bad = associate(host, port, STRANGER_CALLED, "PACSAUDIT")
        with socket.create_connection((close_host, close_port), timeout=2) as sock:
            assert sock.recv(10) == b""
        server = fleet.servers[0][1]
        assert isinstance(server, SimulatedPacs) and server.associations == 2
    assert not fleet._thread.is_alive()
    assert good.established and good.implementation_version_name == "dcm4che-5.31.0"
    assert bad.reject == (1, 1, 7)
    with pytest.raises(OSError):
        socket.create_connection((host, port), timeout=1).close()


def test_threaded_fleet_reports_a_failed_start() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.77.2.3", 0))
        blocker.listen()
        taken = dataclasses.replace(_member("orthanc"), host="127.77.2.3", port=blocker.getsockname()[1])
        with pytest.raises(OSError):
            start_fleet_in_thread([taken])


def test_start_many_serves_consecutive_loopback_addresses() -> None:
    async def body() -> None:
        async with await start_many(PacsPolicy(), 5, base="127.78.3.254", port=0) as fleet:
            hosts = [host for _, host, _ in fleet.endpoints]
            assert hosts == ["127.78.3.254", "127.78.3.255", "127.78.4.0", "127.78.4.1", "127.78.4.2"]
            for member, host, port in fleet.endpoints:
                assert member.expected_open_to_any_ae is True
                outcome = await asyncio.to_thread(associate, host, port, STRANGER_CALLED)
                assert outcome.established and outcome.echo_status == 0
            assert all(s.associations == 1 for _, s in fleet.servers if isinstance(s, SimulatedPacs))

    run(body)


def test_many_members_stays_on_loopback() -> None:
    assert len(many_members(PacsPolicy(), 2, base="127.255.255.254")) == 2
    with pytest.raises(ValueError, match="loopback"):
        many_members(PacsPolicy(), 3, base="127.255.255.254")  # the third would be 128.0.0.0
    with pytest.raises(ValueError, match="loopback"):
        many_members(PacsPolicy(), 1, base="10.0.0.1")
    assert many_members(PacsPolicy(called_aets=frozenset({"X"})), 1)[0].expected_open_to_any_ae is None


def test_a_member_off_loopback_cannot_even_be_declared() -> None:
    with pytest.raises(ValueError, match="loopback"):
        dataclasses.replace(_member("orthanc"), host="192.0.2.7")
