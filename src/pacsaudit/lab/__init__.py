"""The lab: simulated PACS and hostile peers on loopback, for `pacsaudit lab`, tests and benchmarks.

Everything here binds to 127.0.0.0/8 or ::1 only, and refuses any other address.
"""

from pacsaudit.lab.fleet import (
    LAB_FLEET,
    LabMember,
    RunningFleet,
    ThreadedFleet,
    many_members,
    start_fleet,
    start_fleet_in_thread,
    start_many,
)
from pacsaudit.lab.hostile import HostileKind, HostileServer, start_hostile
from pacsaudit.lab.simulator import PacsPolicy, SimulatedPacs, start_simulated_pacs

__all__ = [
    "LAB_FLEET",
    "HostileKind",
    "HostileServer",
    "LabMember",
    "PacsPolicy",
    "RunningFleet",
    "SimulatedPacs",
    "ThreadedFleet",
    "many_members",
    "start_fleet",
    "start_fleet_in_thread",
    "start_hostile",
    "start_many",
    "start_simulated_pacs",
]
