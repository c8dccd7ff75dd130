"""The process entry point: a scan's process leaves at once, with its output whole and its status kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pacsaudit.lab.fleet import many_members, start_fleet_in_thread
from pacsaudit.lab.simulator import PacsPolicy

ROOT = Path(__file__).resolve().parents[1]


def _pacsaudit(*args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-m", "pacsaudit", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_scan_process_ends_with_every_line_written_and_status_zero(tmp_path: Path) -> None:
    output = tmp_path / "results.jsonl"
    with start_fleet_in_thread(many_members(PacsPolicy(), 20, base="127.95.0.1")):
        done = _pacsaudit("scan", "127.95.0.1-20", "-p", "11112", "--no-ae-dictionary", "--no-db",
                          "--workers", "2", "-o", str(output))  # fmt: skip
        to_stdout = _pacsaudit("scan", "127.95.0.7", "-p", "11112", "--no-ae-dictionary", "--no-db", "-q")

    assert done.returncode == 0, done.stderr
    assert "pacsaudit scan summary" in done.stderr  # the summary table reached the terminal
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(r["ip"] for r in records) == sorted(f"127.95.0.{i}" for i in range(1, 21))
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert json.loads(to_stdout.stdout)["dicom"]["open_to_any_ae"] is True


def test_a_refused_scan_keeps_its_exit_status_and_message() -> None:
    failed = _pacsaudit("scan", "not..a..target", "--no-db")

    assert failed.returncode == 2
    assert "not an IP address, CIDR, range or hostname" in failed.stderr


def test_other_commands_end_as_usual() -> None:
    shown = _pacsaudit("version")

    assert (shown.returncode, shown.stdout) == (0, "pacsaudit 0.1.0\n")


def test_leaving_runs_the_exit_handlers_then_exits_with_the_command_status(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pacsaudit import __main__ as entry

    class Left(Exception):
        pass

    steps: list[object] = []

    def leave(status: int) -> None:
        steps.append(("exit", status))
        raise Left

    monkeypatch.setattr(entry.atexit, "_run_exitfuncs", lambda: steps.append("exit handlers"))
    monkeypatch.setattr(entry.os, "_exit", leave)
    for code, status in ((None, 0), (0, 0), (2, 2), (130, 130), ("bad target list", 1)):
        steps.clear()
        with pytest.raises(Left):
            entry._leave(code)
        assert steps == ["exit handlers", ("exit", status)]
    assert capsys.readouterr().err == "bad target list\n"  # SystemExit("...") prints, as Python does
