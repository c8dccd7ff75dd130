"""A stand-in for the scan engine, for the kill -9 test: endpoints finish out of order, results
are flushed in batches with the low-water mark of the moment, forever, until killed.

    python crash_writer.py URL SCAN_ID TOTAL SEED
"""

from __future__ import annotations

import random
import sys
import time

from pacsaudit.model import EndpointResult
from pacsaudit.storage import LowWaterMark, ScanStore
from storage.synthetic import synthetic_result

IN_FLIGHT = 64
FLUSH_EVERY = 50


def emits(position: int) -> bool:
    """Every fifth endpoint is a closed port: finished, but nothing to store."""
    return position % 5 != 0


def main() -> None:
    url, scan_id, total, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    rng = random.Random(seed)
    with ScanStore.open(url) as store:
        lwm = LowWaterMark()
        in_flight: list[int] = []
        pending: list[tuple[int, EndpointResult]] = []
        done = 0
        for position in range(total):
            lwm.started(position)
            in_flight.append(position)
            if len(in_flight) < IN_FLIGHT:
                continue
            finished = in_flight.pop(rng.randrange(len(in_flight)))
            if emits(finished):
                pending.append((finished, synthetic_result(finished)))
            lwm.finished(finished)
            done += 1
            if done % FLUSH_EVERY == 0:
                store.write_batch(scan_id, pending, low_water_mark=lwm.mark, endpoints_done=done)
                pending = []
                time.sleep(0.002)
        time.sleep(3600)  # never ends on its own: the test kills it


if __name__ == "__main__":
    main()
