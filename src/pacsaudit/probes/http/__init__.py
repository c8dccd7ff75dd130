"""The HTTP(S) probe: PACS web front ends, Orthanc's REST API, DICOMweb, and what a stranger may list.

`probe_http` is the one entry point the scan engine calls for a web port; signatures live in
``pacsaudit/data/http_signatures.toml`` and are matched by the pure `match_response`.
"""

from pacsaudit.probes.http.client import USER_AGENT
from pacsaudit.probes.http.probe import probe_http
from pacsaudit.probes.http.signatures import HttpSignature, Observed, http_signatures, match_response

__all__ = ["USER_AGENT", "HttpSignature", "Observed", "http_signatures", "match_response", "probe_http"]
