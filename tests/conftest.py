import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# The real EEG the suite reads, carried by the repository (tests/data/README.md), unpacked on first use
from tests.data.eeg import unpacked  # noqa: E402

DATA = unpacked(ROOT / "tests" / "data" / "eegmmidb-S001")
#: the OpenBCI Cyton + Daisy run of MI-OpenBCI S02 (125 Hz, 15 ch), beside EEGMMIDB S001
DATA_S02 = unpacked(ROOT / "tests" / "data" / "mi-openbci-S02") / "S02_R0.edf"
PROTOCOLS = ROOT / "protocols"
CONFIGS = ROOT / "configs"


def run_cli(*args, cwd=None, timeout=300, console=False):
    """Run the `neurofeed` command; returns a CompletedProcess (returncode, stdout, stderr).

    By default in-process (the same ``neurofeed.cli.main`` the console script calls, without
    paying a new interpreter's imports on every call); ``console=True`` runs the installed
    console script in a subprocess, as a user does."""
    import contextlib
    import io
    import subprocess

    args = [str(a) for a in args]
    if console:
        exe = Path(sys.executable).parent / "neurofeed"
        return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd or ROOT, timeout=timeout)
    from neurofeed.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    try:
        if cwd:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(args)
            except SystemExit as e:  # argparse
                rc = e.code if isinstance(e.code, int) else 2
    finally:
        os.chdir(old)
    return subprocess.CompletedProcess(["neurofeed", *args], rc, out.getvalue(), err.getvalue())


def lsl_eeg_outlet(name, float32=False, labels=("C3", "Cz", "C4"), sfreq=250, unit="microvolts"):
    """A real pylsl EEG outlet on loopback with channel labels (and ``unit``, None: none) in its description."""
    import pylsl

    fmt = pylsl.cf_float32 if float32 else pylsl.cf_double64
    info = pylsl.StreamInfo(name, "EEG", len(labels), sfreq, fmt, f"{name}-1")
    chans = info.desc().append_child("channels")
    for label in labels:
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        if unit is not None:
            ch.append_child_value("unit", unit)
    return pylsl.StreamOutlet(info)


def run_to_end(pipe, rec, timeout_s=600.0):
    """Run a built session until its protocol ends (the timeout only stops a hung test), stop it and
    close its recording; returns the session summary. Fails the test if it hung or stopped on an error."""
    from neurofeed.live.session import finish_session

    pipe.start()
    try:
        ended = pipe.wait(timeout_s)
    finally:
        pipe.stop()
    summary = finish_session(pipe, rec)
    assert ended and pipe.error is None, pipe.error
    return summary


def wait_until(condition, timeout_s=60.0, what="the condition"):
    """Wait for ``condition()`` to hold (an event, not a duration). The timeout only stops a hung
    test; it is generous so a busy machine cannot trip it."""
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:g} s"
        time.sleep(0.005)


class PollClock:
    """Wraps a source and records, on the pipeline's own clock (``perf_counter_ns``), when every
    ``read()`` returned and the arrival time of every chunk; and, as a sink, when "signal lost"
    was published. What a busy machine delays (the test thread, the poll rate) is not measured;
    what the pipeline decides (which poll declares the loss) is checked exactly."""

    def __init__(self, source):
        self.source = source
        self.polls: list[tuple[int, int | None]] = []  # (returned_ns, chunk arrival_ns or None)
        self.lost_ns: list[int] = []  # when each "signal lost" was published
        self._lost = False

    def __getattr__(self, name):
        return getattr(self.source, name)

    def read(self):
        import time

        c = self.source.read()
        self.polls.append((time.perf_counter_ns(), None if c is None else c.arrival_ns))
        return c

    def on_state(self, st):
        import time

        if st.signal_lost and not self._lost:
            self.lost_ns.append(time.perf_counter_ns())
        self._lost = st.signal_lost

    def check_signal_lost(self, after_s: float):
        """Assert that the first "signal lost" was declared by the first poll that returned at
        least ``after_s`` after the last chunk's arrival (never earlier, never a poll later)."""
        declared = self.lost_ns[0]
        polls = [p for p in self.polls if p[0] <= declared]
        last_data = max(a for _, a in polls if a is not None)
        assert declared - last_data >= after_s * 1e9, "signal lost declared too early"
        # the poll before the declaring one returned within after_s of the data: it could not yet declare
        assert polls[-2][0] - last_data <= after_s * 1e9, "a poll after the deadline did not declare the loss"
        return (declared - last_data) / 1e9


def wait_for_signal_lost(pipe, timeout_s=60.0):
    """Wait until the pipeline reports "signal lost" (an event; the timeout only stops a hung test)."""
    wait_until(lambda: pipe.lost_events > 0, timeout_s, "'signal lost'")
    assert pipe.lost_events == 1, "more than one 'signal lost' reported"


def pull_until(inlet, done, timeout_s=60.0):
    """Pull samples from a pylsl inlet until ``done(samples)`` holds; returns them. Polls with
    ``timeout=0`` (liblsl's pull_chunk with a timeout waits for a full chunk, not for the first sample)."""
    import time

    samples, deadline = [], time.monotonic() + timeout_s
    while not done(samples):
        assert time.monotonic() < deadline, f"only {len(samples)} LSL samples within {timeout_s:g} s"
        chunk, _ = inlet.pull_chunk(timeout=0.0)
        samples += chunk
        if not chunk:
            time.sleep(0.005)
    return samples


@pytest.fixture
def data_dir():
    assert DATA.exists(), f"the test EEG is missing at {DATA}"
    return DATA


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
