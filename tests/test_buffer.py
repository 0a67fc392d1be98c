import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurofeed.core.buffer import RingBuffer


@settings(max_examples=200, deadline=None)
@given(capacity=st.integers(1, 64), sizes=st.lists(st.integers(1, 100), min_size=1, max_size=30),
       n_read=st.integers(0, 80))
def test_wraparound_matches_numpy_reference(capacity, sizes, n_read):
    rb = RingBuffer(3, capacity)
    ref = np.zeros((3, 0))
    ref_ts = np.zeros(0)
    counter = 0
    for n in sizes:
        chunk = np.arange(counter, counter + 3 * n, dtype=float).reshape(3, n)
        ts = np.arange(counter, counter + n) / 250.0
        counter += 3 * n
        rb.write(chunk, ts)
        ref = np.concatenate([ref, chunk], axis=1)
        ref_ts = np.concatenate([ref_ts, ts])
    k = min(n_read, capacity, ref.shape[1])
    want = ref[:, ref.shape[1] - k:]
    got, got_ts = rb.read_last(n_read)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_ts, ref_ts[ref_ts.size - k:])
    # into the reader's own (larger) arrays: same values, in those arrays
    out, out_ts = np.full((3, 80), -1.0), np.full(80, -1.0)
    got2, ts2 = rb.read_last(n_read, out, out_ts)
    np.testing.assert_array_equal(got2, want)
    np.testing.assert_array_equal(ts2, got_ts)
    assert got2.shape[1] == 0 or np.shares_memory(got2, out)
    assert rb.n_written == ref.shape[1]


def test_read_last_never_returns_a_view_of_the_ring():
    rb = RingBuffer(2, 100)
    rb.write(np.ones((2, 30)), np.arange(30.0))
    data, ts = rb.read_last(20)
    assert not np.shares_memory(data, rb._data) and not np.shares_memory(ts, rb._ts)
    rb.write(np.zeros((2, 30)), np.arange(30.0))
    assert (data == 1).all()  # the copy is the reader's: later writes do not change it


def test_timestamps_are_optional():
    rb = RingBuffer(1, 10)
    rb.write(np.arange(4.0)[None])
    data, ts = rb.read_last(4)
    np.testing.assert_array_equal(data, [[0, 1, 2, 3]])
    assert np.isnan(ts).all()


def test_reads_never_tear_while_the_writer_laps_the_ring():
    """Every chunk is a constant (its index) on every channel with a matching timestamp; a read that
    mixes two writes shows as samples that are not non-decreasing or rows that disagree."""
    rb = RingBuffer(4, 37)  # not a multiple of the chunk size: wraps mid-chunk
    stop = threading.Event()
    bad = []

    def reader():
        out, out_ts = np.empty((4, 30)), np.empty(30)
        while not stop.is_set():
            d, ts = rb.read_last(30, out, out_ts)
            if d.shape[1] and ((d != d[0]).any() or (np.diff(d[0]) < 0).any() or (d[0] != ts).any()):
                bad.append(d.copy())

    threads = [threading.Thread(target=reader) for _ in range(2)]  # two readers, each its own arrays
    for t in threads:
        t.start()
    block = np.empty((4, 7))
    for i in range(20000):
        block[:] = i
        rb.write(block, np.full(7, float(i)))
    stop.set()
    for t in threads:
        t.join()
    assert not bad, bad[0]


def test_no_allocation_per_write_or_read():
    rb = RingBuffer(4, 50)
    before = rb._data.__array_interface__["data"][0]
    out, out_ts = np.empty((4, 20)), np.empty(20)
    for _ in range(20):
        rb.write(np.ones((4, 7)))
        d, ts = rb.read_last(20, out, out_ts)
        assert np.shares_memory(d, out) and np.shares_memory(ts, out_ts)
    assert rb._data.__array_interface__["data"][0] == before


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="-5 is invalid"):
        RingBuffer(2, -5)
    rb = RingBuffer(2, 10)
    with pytest.raises(ValueError, match="holds 2 channels"):
        rb.write(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="4 samples but 3 timestamps"):
        rb.write(np.zeros((2, 4)), np.zeros(3))
    with pytest.raises(ValueError, match=r"out of shape \(2, >= 5\)"):
        rb.read_last(5, np.zeros((2, 3)))
