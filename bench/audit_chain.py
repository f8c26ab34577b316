"""Audit trail figures: append rate (one writer and several), queries per append, verify rate.

Run with `make bench` (PostgreSQL and Redis as for the tests). Prints figures; asserts nothing.
"""

import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, connections, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from portal.selectors import audit_chain_verify  # noqa: E402
from portal.services import audit_record  # noqa: E402

EVENTS = int(os.environ.get("BENCH_EVENTS", "5000"))
WRITERS = int(os.environ.get("BENCH_WRITERS", "8"))


def append(n: int) -> None:
    with transaction.atomic():
        audit_record(
            actor=None,
            action="bench.append",
            object_type="bench.thing",
            object_id=str(n),
            after={"n": n, "ratio": n / 7, "tags": ["a", "b"]},
        )


def main() -> None:
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        print(f"database: {connection.vendor} ({name})")
        with CaptureQueriesContext(connection) as first:
            append(0)
        for n in range(1, 1000):
            append(n)
        with CaptureQueriesContext(connection) as later:
            append(1000)
        print(f"queries per append: {len(first)} with 1 event stored, {len(later)} with 1,000 stored")

        started = time.perf_counter()
        for n in range(EVENTS):
            append(n)
        elapsed = time.perf_counter() - started
        print(f"one writer: {EVENTS} appends in {elapsed:.2f} s = {EVENTS / elapsed:,.0f} events/s")

        per_writer = EVENTS // WRITERS

        def writer(offset: int) -> None:
            for n in range(per_writer):
                append(offset + n)
            connections.close_all()

        threads = [threading.Thread(target=writer, args=(i * per_writer,)) for i in range(WRITERS)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        total = per_writer * WRITERS
        print(f"{WRITERS} writers: {total} appends in {elapsed:.2f} s = {total / elapsed:,.0f} events/s")

        started = time.perf_counter()
        verdict = audit_chain_verify()
        elapsed = time.perf_counter() - started
        rate = verdict.checked / elapsed
        state = "intact" if verdict.ok else f"BROKEN: {verdict.problem}"
        print(f"verify: {verdict.checked:,} events in {elapsed:.2f} s = {rate:,.0f} events/s (chain {state})")
    finally:
        connections.close_all()
        connection.creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main()
