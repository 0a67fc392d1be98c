import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurofeed.buffer import RingBuffer


@settings(max_examples=200, deadline=None)
@given(capacity=st.integers(1, 64), sizes=st.lists(st.integers(1, 100), min_size=1, max_size=30),
       n_read=st.integers(0, 80))
def test_wraparound_matches_numpy_reference(capacity, sizes, n_read):
    rb = RingBuffer(3, capacity)
    ref = np.zeros((3, 0))
    counter = 0
    for n in sizes:
        chunk = np.arange(counter, counter + 3 * n, dtype=float).reshape(3, n)
        counter += 3 * n
        rb.write(chunk)
        ref = np.concatenate([ref, chunk], axis=1)
    want = ref[:, max(0, ref.shape[1] - min(n_read, capacity)):]
    got = rb.read_last(n_read)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert rb.n_written == ref.shape[1]


def test_read_last_is_a_view_when_contiguous():
    rb = RingBuffer(2, 100)
    rb.write(np.ones((2, 30)))
    view = rb.read_last(20)
    assert np.shares_memory(view, rb._data)


def test_read_new_and_overflow_count():
    rb = RingBuffer(1, 10)
    rb.write(np.arange(4.0)[None])
    np.testing.assert_array_equal(rb.read_new(), [[0, 1, 2, 3]])
    assert rb.read_new().shape == (1, 0)
    rb.write(np.arange(10.0, 25.0)[None])  # 15 new samples into a 10-sample buffer
    assert rb.overflow == 5
    np.testing.assert_array_equal(rb.read_new(), np.arange(15.0, 25.0)[None])


def test_no_allocation_per_write():
    rb = RingBuffer(4, 50)
    before = rb._data.__array_interface__["data"][0]
    for _ in range(20):
        rb.write(np.ones((4, 7)))
    assert rb._data.__array_interface__["data"][0] == before


def test_bad_capacity_names_the_value():
    with pytest.raises(ValueError, match="-5 is invalid"):
        RingBuffer(2, -5)
