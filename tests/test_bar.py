"""The bar the participant sees, apart from the reward rule (issue 20).

- The reward rule (hold, hysteresis, refractory, gates) runs on the raw SI; its percentile
  threshold is calibrated by running that rule over the baseline.
- The bar is the SI unless a protocol names a smoother in [feedback] (time units, counted in
  the delay); nothing else in the package smooths what is shown.
- On EEGMMIDB S001 R03-R06 as live-like sessions (R01 as the baseline, the run's T1/T2 as
  feedback) with the default protocol: the realised reward rates.
"""

import re
from pathlib import Path

import numpy as np
import pytest

from neurofeed.protocol.baseline import BaselineModel
from neurofeed.protocol.reward import RewardRule, reward_rate
from neurofeed.protocol.schema import PROTOCOL_DIR, ProtocolError, load_protocol, parse_protocol
from tests.conftest import DATA

PACKAGE = Path(__file__).resolve().parents[1] / "neurofeed"


def test_reward_rule_hold_hysteresis_and_refractory_in_samples():
    rule = RewardRule(hold=3, refractory=4, hysteresis_si=0.1)
    seq = [-1, -1, -1, 0.05, 0.05, 0.2, -1, -1, -1, -1, -1, -1, -1]
    got = [rule.step(v, 0.0, "up", False, 1)[0] for v in seq]
    # on after the 3-sample hold; kept through 0.05 (within the hysteresis), off at 0.2;
    # then the condition holds again at once but the 4-sample refractory runs first
    assert got == [False, False, True, True, True, False, False, False, False, True, True, True, True]
    # the gate ends a reward and blocks a new one; direction "down" mirrors the rule
    rule = RewardRule(hold=0, refractory=0)
    assert rule.step(-1, 0.0, "up", True, 1) == (False, True)
    assert rule.step(1, 0.0, "down", False, 1) == (True, True)
    assert rule.step(np.nan, 0.0, "down", False, 1) == (False, False)  # no SI: no reward


def _jumpy_baseline(n=15000, seed=0):
    """A minute of one-sample updates whose log power jumps like the raw SI on real EEG (an
    AR(1) with a ~0.1-s memory, sd ~0.35 log units), a few gated stretches."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    z = lfilter([0.2], [1, -0.96], rng.standard_normal((2, n)), axis=1)
    m = BaselineModel(2, 250.0, "mean", "mean", 0.0, capacity=n + 16)
    for i in range(n):
        m.add(10 ** z[:, i:i + 1], gated=(i // 250) % 20 == 7)
    return m


@pytest.mark.parametrize("hold_s,hysteresis_si", [(0.0, 0.0), (0.25, 0.0), (0.5, 0.1)])
def test_percentile_threshold_makes_the_rule_reward_its_target_over_the_baseline(hold_s, hysteresis_si):
    text = (f'[protocol]\nname = "t"\n[threshold]\nmode = "percentile"\nbaseline_reward_pct = 40\n'
            f'hold_s = {hold_s}\nhysteresis_si = {hysteresis_si}\nrefractory_s = 0.1\n'
            '[[blocks]]\nlabel = "baseline"\nkind = "exploration"\nduration_s = 60\n')
    spec = parse_protocol(text).threshold
    m = _jumpy_baseline()
    base = m.power_uv2()
    thr = m.thresholds(spec, base)
    si = m.combined_si(base)
    sizes, gated = m._size[: m.n_updates], m._gated[: m.n_updates]
    hold, refr = int(hold_s * 250), 25
    for direction in ("up", "down"):
        rate = reward_rate(si, sizes, gated, thr[direction], direction, hold, refr, hysteresis_si)
        assert rate == pytest.approx(0.40, abs=0.01), (direction, rate)
    if hold_s:
        # the plain 40th percentile of the SI, as before, rewards far less than 40 % with a hold
        plain = np.percentile(si[~gated], 40)
        assert reward_rate(si, sizes, gated, plain, "up", hold, refr, hysteresis_si) < 0.25


def test_the_engine_rewards_on_the_raw_si_while_the_bar_is_smoothed():
    from neurofeed.protocol.engine import Engine

    text = ('[protocol]\nname = "t"\n[threshold]\nmode = "fixed"\nvalue = -0.5\n[feedback]\nsmoothing_s = 1.0\n'
            '[[blocks]]\nlabel = "baseline"\nkind = "exploration"\nduration_s = 1\n'
            '[[blocks]]\nlabel = "train"\nkind = "integration"\nduration_s = 10\nfeedback = true\n')
    eng = Engine(parse_protocol(text), 250.0, ["C3", "C4"])
    eng.carry({"source": "t", "baseline_uv2": {"C3": 1.0, "C4": 1.0}, "thresholds": {"up": -0.5, "down": -0.5}})
    states = [eng.update(np.full((2, 10), 1.0 if i < 40 else 0.1), False) for i in range(60)]
    st = states[45]  # 0.2 s after a step to SI -1
    assert st.si_combined == pytest.approx(-1.0) and st.si_bar > -0.5  # the bar still on its way
    assert st.reward  # the reward follows the SI itself
    assert eng.summary()["feedback_delay_s"] == pytest.approx(1.0)  # the bar's smoothing counted


def test_no_hidden_smoother_in_the_package():
    # a smoother of what is shown is a named, documented [feedback] (or [dyad]) setting in seconds:
    # no "x += 0.08 * (target - x)" per paint or per update anywhere in the package
    per_step = re.compile(r"\+=\s*0?\.\d+\s*\*\s*\(")
    hits = [f"{p.relative_to(PACKAGE)}:{i + 1}" for p in PACKAGE.rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines()) if per_step.search(line)]
    assert not hits, hits
    # [signal] smoothing_s (a power smoother in front of the bar) is gone, with a pointer
    with pytest.raises(ProtocolError, match=r"\[signal\] smoothing_s is no longer.*\[feedback\] smoothing_s"):
        parse_protocol('[protocol]\nname = "t"\n[signal]\nsmoothing_s = 0.1\n'
                       '[[blocks]]\nlabel = "b"\nkind = "exploration"\nduration_s = 1\n')


def test_every_shipped_protocol_keeps_the_bar_within_50_ms_or_says_why(capsys):
    from neurofeed.cli import main

    files = sorted(PROTOCOL_DIR.glob("*.toml"))
    assert main(["protocols", "check", *map(str, files)]) == 0
    out = capsys.readouterr().out
    for f in files:
        line = next(ln for ln in out.splitlines() if f.name in ln and "bar delay" in ln)
        p = load_protocol(f)
        if "within the 50-ms budget" in line:
            assert p.signal.delay_s == "choose" and p.feedback.bar_delay_s() == 0, f.name
        else:
            # a protocol that slows its bar (a [feedback] smoother or a slower design) says why
            assert "Why this bar is slower than 50 ms" in f.read_text(), (f.name, line)


@pytest.fixture(scope="module")
def sessions():
    from benchmarks.reward_rate import live_session

    assert DATA.exists(), f"the shared EEG data is missing at {DATA}"
    return {r: live_session(r, "cyton", DATA) for r in (3, 4, 5, 6)}


def test_default_protocol_reward_rates_on_live_like_sessions(sessions):
    # The default protocol (demo: percentile 40 %, 0.25-s hold, the bar unsmoothed, "choose") and
    # its adaptive twin (target 60 %) on S001 R03-R06, BrainFlow's default Cyton montage at 250 Hz
    from benchmarks.reward_rate import run_stream

    rates = {}
    for mode in ("percentile", "adaptive"):
        for r, (x, ch, fs, marks) in sessions.items():
            p = load_protocol("demo")
            p.threshold.mode = mode
            out = run_stream(p, x, ch, fs, marks)
            assert out["feedback_s"] > 50
            rates[mode, r] = 100 * out["reward_rate"]
    for r in sessions:
        assert abs(rates["adaptive", r] - 60) <= 10, rates
        # percentile: the threshold realises 40 % over the baseline (test above); in the motor runs
        # the participant's mu is suppressed against the rest baseline (R03: mean SI 0.25 log units
        # below R06's), so single runs land 31-60 % (RESULTS.md); never the 0.3 % of a hold that
        # the calibration ignored
        assert 20 <= rates["percentile", r] <= 65, rates
    assert abs(np.mean([rates["percentile", r] for r in sessions]) - 40) <= 10, rates


def test_easing_is_in_seconds_whatever_the_update_rate():
    from neurofeed.ui.easing import eased_series

    # a step from 0 to 1, new values every 4 ms or every 40 ms: one easing_s after the step's first
    # value arrived the painted bar has covered 1 - 1/e of the way either way
    for every_ms in (4, 40):
        t_ns = np.arange(0, 1_000_000_000, every_ms * 1_000_000, dtype=np.int64)
        values = (t_ns >= 100_000_000).astype(float)
        grid, shown = eased_series(t_ns, values, 0.15)
        arrived = t_ns[np.argmax(values)]  # the step's first value
        at = shown[np.searchsorted(grid, arrived + 150_000_000)]
        assert at == pytest.approx(1 - np.exp(-1), abs=0.02), every_ms
        grid0, shown0 = eased_series(t_ns, values, 0.0)  # no easing: the value as it arrived, held
        assert shown0[np.searchsorted(grid0, 100_000_000 + every_ms * 1_000_000)] == 1.0


def test_bench_latency_times_the_painted_bar_on_real_eeg():
    """The real-EEG loop end to end, short (20 s; the CI figure runs 90 s): the loader, BrainFlow's
    default Cyton montage (so the common average), the design "choose" picked, the headline."""
    import argparse

    from neurofeed.devtools.bench import electrode_to_feedback_benchmark

    args = argparse.Namespace(protocol="demo", seconds=20.0, estimator=None, delay_s=None, burst_ms=0.0,
                              display=False, busy_poll=False, signal="eeg")
    r = electrode_to_feedback_benchmark(args)
    assert "error" not in r and r["dropped_samples"] == 0
    assert r["signal_kind"] == "eeg" and r["eeg_file"].endswith("S001R04.edf") and r["reference"] == "average"
    assert r["delay_s_in_use"] <= -0.005  # the budget's designs (the curve decides which)
    b = r["electrode_to_painted_bar_ms"]
    assert 0 <= b["effective_delay"] <= 150 and b["r"] > 0.3  # a 20-s run: loose; RESULTS.md has the figure
    assert b["effective_delay"] >= r["estimator_only_ms"]["effective_delay"] - 4  # the loop only adds
