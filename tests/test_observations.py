"""The observation store: a proxy's records (add_request) wait in one list, yet every read sees
them, in the order they came, with "none" in the columns a proxy does not know; a store no one
reads keeps them in its compact columns, not in a list that grows."""

from __future__ import annotations

import math
import tracemalloc

from mlchaos.observations import ErrorKind, Observation, ObservationStore


def test_proxy_records_are_counted_and_read_in_order_with_direct_ones() -> None:
    store = ObservationStore()
    store.add_request(1, 100.0, 0.01, 200, ErrorKind.OK, 0)
    store.append(Observation(arm=None, start=101.0, latency=0.02, model="m", key="u1"))
    store.add_request(2, 102.0, 0.03, 503, ErrorKind.OK, 1)
    store.add_request(0, 103.0, 0.04, 0, ErrorKind.RESET, 1)
    assert len(store) == 4
    assert store.column("start").tolist() == [100.0, 101.0, 102.0, 103.0]
    assert store.column("arm").tolist() == [1, 0, 2, 0]
    assert store.column("status").tolist() == [200, 0, 503, 0]
    assert store.column("error").tolist() == [0, 0, 0, ErrorKind.RESET]
    assert store.column("fault").tolist() == [0, 0, 1, 1]
    assert store.column("model").tolist() == [-1, 0, -1, -1]
    assert store.column("key").tolist()[2:] == [-1, -1]
    assert all(math.isnan(v) for v in store.column("prediction"))


def test_a_journal_batch_sees_waiting_proxy_records() -> None:
    store = ObservationStore()
    store.add_request(1, 1.0, 0.5, 200, ErrorKind.OK, 0)
    columns = store.columns()
    assert columns["latency"] == [0.5]
    assert columns["degradation"] == [-1]
    copy = ObservationStore()
    copy.extend_columns(columns, store.models, store.degradations)
    store.add_request(2, 2.0, 0.25, 200, ErrorKind.OK, 0)
    copy.extend_columns(store.columns(1), store.models, store.degradations)
    assert copy.column("latency").tolist() == [0.5, 0.25]
    assert store.nbytes() == copy.nbytes()


def test_a_store_no_one_reads_holds_a_proxys_records_in_its_columns() -> None:
    # A proxy's store may go unread for hours. Its columns take 57 bytes a record; the waiting
    # list, had it no bound, 48 bytes of pointers and two 24-byte floats (96).
    records = 200_000
    store = ObservationStore()
    tracemalloc.start()
    try:
        for i in range(records):
            store.add_request(1, float(i), i / 1e6, 200, ErrorKind.OK, 0)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held / records < 75
    assert store.nbytes() == 57 * records
    assert store.column("start")[-1] == records - 1
