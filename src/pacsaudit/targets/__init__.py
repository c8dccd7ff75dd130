"""What to scan: target specs and port lists in, a lazy, resumable stream of endpoints out.

Nothing here sends a packet; exclusions are applied before any endpoint leaves the stream.
"""

from pacsaudit.targets.exclusions import ExclusionList
from pacsaudit.targets.ports import parse_ports
from pacsaudit.targets.specs import TargetSpecError
from pacsaudit.targets.stream import Endpoint, TargetStream

__all__ = ["Endpoint", "ExclusionList", "TargetSpecError", "TargetStream", "parse_ports"]
