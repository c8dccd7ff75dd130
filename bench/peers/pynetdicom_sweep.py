"""The C-ECHO sweep most scripts write: a 16-thread pool, one pynetdicom association per target.

This is the pynetdicom peer in ``bench/scan_bench.py``. It is deliberately the plain idiom
(``AE().associate(...)``, ``send_c_echo()``, ``release()``), not a tuned client, because that
is what the benchmark compares against. Every pynetdicom timeout is set to the per-target
timeout; note they bound each phase (connect, A-ASSOCIATE, DIMSE, network idle), not the
target's total time.

Prints one JSON line per target on stdout:
``{"ip": ..., "port": ..., "detected": bool, "accepted": bool, "echo": bool}`` where
``detected`` means a DICOM peer answered the A-ASSOCIATE-RQ (accept or reject), ``accepted``
that the association was established and ``echo`` that C-ECHO returned status 0x0000.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]


def echo_one(ip: str, port: int, timeout: float) -> dict[str, Any]:
    """Associate, C-ECHO and release; every failure is recorded as data."""
    ae = AE()
    ae.add_requested_context(Verification)
    ae.acse_timeout = timeout
    ae.dimse_timeout = timeout
    ae.network_timeout = timeout
    ae.connection_timeout = timeout
    detected = accepted = echo = False
    try:
        assoc = ae.associate(ip, port, ae_title="ANY-SCP")
        detected = assoc.is_established or assoc.is_rejected
        accepted = assoc.is_established
        if accepted:
            status = assoc.send_c_echo()
            echo = bool(status) and status.Status == 0x0000
            assoc.release()
    except Exception:  # a broken peer must not stop the sweep
        pass
    return {"ip": ip, "port": port, "detected": detected, "accepted": accepted, "echo": echo}


def read_targets(path: str) -> list[str]:
    """One IPv4/IPv6 address per line; only loopback addresses are accepted."""
    targets: list[str] = []
    with open(path, encoding="ascii") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if not ipaddress.ip_address(line).is_loopback:
                raise SystemExit(f"refusing non-loopback target {line!r}")
            targets.append(line)
    return targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-iL", dest="targets", required=True, help="file with one address per line")
    parser.add_argument("-p", "--port", type=int, default=11112)
    parser.add_argument("--timeout", type=float, default=2.0, help="pynetdicom timeouts, seconds")
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args(argv)

    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
    targets = read_targets(args.targets)
    with ThreadPoolExecutor(args.threads) as pool:
        for result in pool.map(lambda ip: echo_one(ip, args.port, args.timeout), targets):
            sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
