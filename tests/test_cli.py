"""`pacsaudit` as a user runs it: a real process, real sockets, the output a user would read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pacsaudit.lab.fleet import LabMember, ThreadedFleet, start_fleet_in_thread
from pacsaudit.lab.simulator import PacsPolicy

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT.parent / "shared" / "tools" / "check-contract.py"


def _pacsaudit(*args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(ROOT / "src"), "COLUMNS": "160"}
    return subprocess.run(
        [sys.executable, "-m", "pacsaudit", *args], capture_output=True, text=True, timeout=120, env=env
    )


def _member(name: str, host: str, policy: PacsPolicy) -> LabMember:
    return LabMember(
        name=name,
        description=name,
        host=host,
        port=11112,
        behaviour=policy,
        expected="",
        expected_status=None,
    )


@pytest.fixture(scope="module")
def fleet() -> Iterator[ThreadedFleet]:
    members = [
        _member("open", "127.79.0.1", PacsPolicy()),
        _member("checked", "127.79.0.2", PacsPolicy(called_aets=frozenset({"ARCHIVE"}))),
        _member("excluded", "127.79.0.3", PacsPolicy()),
    ]
    with start_fleet_in_thread(members) as running:
        yield running


def _connections(fleet: ThreadedFleet, name: str) -> int:
    (server,) = [s for m, s in fleet.servers if m.name == name]
    return int(server.associations)


def test_scan_writes_contract_lines_and_honours_exclusions(fleet: ThreadedFleet, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    excluded_before = _connections(fleet, "excluded")
    done = _pacsaudit(
        "scan",
        "127.79.0.1-3",
        "-p",
        "11112,11113",
        "--exclude",
        "127.79.0.3",
        "--rate",
        "0",
        "--timeout",
        "2",
        "-o",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    by_ip = {(r["ip"], r["port"]): r for r in lines}
    assert set(by_ip) == {("127.79.0.1", 11112), ("127.79.0.2", 11112)}, (
        "closed 11113 not emitted without --all"
    )
    assert by_ip[("127.79.0.1", 11112)]["dicom"]["open_to_any_ae"] is True
    assert by_ip[("127.79.0.2", 11112)]["dicom"]["accepted_called_ae"] == "ARCHIVE"
    assert _connections(fleet, "excluded") == excluded_before, "an excluded target got a packet"
    assert "DICOM detected" in done.stderr and "open to any AE title" in done.stderr
    checked = subprocess.run(
        [sys.executable, str(CONTRACT), "scan", str(out)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout


def test_all_emits_closed_ports_and_stdout_output(fleet: ThreadedFleet) -> None:
    done = _pacsaudit("scan", "127.79.0.1", "-p", "11112,11113", "--all", "-q", "-o", "-")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert {(r["port"], r["status"]) for r in lines} == {(11112, "success"), (11113, "connection-refused")}
    assert done.stderr == "", "-q and a non-terminal stderr: nothing on stderr"


def test_target_file_with_ports_and_comments(fleet: ThreadedFleet, tmp_path: Path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text("# lab\n127.79.0.1:11112\n\n127.79.0.2:11112  # checked\n")
    done = _pacsaudit("scan", "-iL", str(targets), "-q", "--no-ae-dictionary")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert {r["ip"]: r["dicom"]["association"] for r in lines} == {
        "127.79.0.1": "accepted",
        "127.79.0.2": "rejected",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scan"], "no targets"),
        (["scan", "127.0.0.1", "-p", "0"], "port"),
        (["scan", "300.1.2.3"], "300.1.2.3"),
        (["scan", "127.0.0.1", "--calling-ae", "A\\B"], "AE title"),
    ],
)
def test_bad_input_is_a_clear_error_before_any_packet(args: list[str], message: str) -> None:
    done = _pacsaudit(*args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_config_file_sets_defaults_and_options_override(tmp_path: Path) -> None:
    from pacsaudit.config import load_settings

    config = tmp_path / "pacsaudit.toml"
    config.write_text('timeout = 1.5\nrate = 10\ncalled_ae = ["ARCHIVE"]\n')
    settings = load_settings(config, rate=99.0)
    assert (settings.timeout, settings.rate, settings.called_ae) == (1.5, 99.0, ["ARCHIVE"])


def test_schema_command_prints_the_checked_in_schema() -> None:
    done = _pacsaudit("schema")
    assert json.loads(done.stdout) == json.loads((ROOT / "docs" / "result.schema.json").read_text())
