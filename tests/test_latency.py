"""Latency as the participant lives it: the accuracy/delay curve, delay_s = "choose", the
electrode-to-feedback analysis and the emulated Cyton read by BrainFlow's own driver."""

from pathlib import Path

import numpy as np
import pytest

from neurofeed.core.errors import NeurofeedError, ProtocolError
from neurofeed.devtools.bench import (
    BurstRelay,
    effective_delay,
    scripted_mu_signal,
    step_crossings_ms,
    true_log_power,
)
from neurofeed.dsp.accuracy import (
    CHOOSE_MAX_DELAY_S,
    CURVE_DELAYS_S,
    accuracy_delay_curve,
    choose_delay,
    ideal_envelope,
)
from neurofeed.dsp.estimators import CFIREnvelope, design_cfir, psd_weights
from neurofeed.hardware.sources.simulated import MuSimulator, SimulationScript
from neurofeed.live.processor import Processor
from neurofeed.protocol.schema import parse_protocol

ROOT = Path(__file__).resolve().parent.parent
EEG = ROOT / "tests" / "data" / "eegmmidb-S001"  # the real EEG the repository carries (tests/data/README.md)


def test_curve_uses_the_same_filter_as_the_streaming_estimator(rng):
    # the offline FFT convolution in accuracy_delay_curve must be the live cFIR, sample for sample
    x = rng.standard_normal(3000) * 10
    h = design_cfir(250.0, (8.0, 13.0), 0.02, 500, weights=psd_weights(x, 250.0))
    est = CFIREnvelope(250.0, (8.0, 13.0), 1, delay_s=0.02, taps=h)
    streamed = np.concatenate([est.process_inplace(x[None, i:i + 7].copy())[0] for i in range(0, x.size, 7)])
    from scipy import signal

    offline = np.abs(signal.fftconvolve(x, h)[:x.size])
    # the streaming estimator starts from a history filled with the first sample (no start-up step
    # from an electrode offset); once its history holds only signal the two are the same filter
    k = len(h)
    np.testing.assert_allclose(np.sqrt(2 * streamed[k:]), offline[k:], atol=1e-9)


def test_curve_on_real_eeg_rises_with_delay_like_the_benchmark():
    from neurofeed.hardware.sources.edf import read_raw

    assert EEG.exists(), f"the test EEG is missing at {EEG}"
    raw = read_raw(EEG / "S001R03.edf")
    sfreq = raw.info["sfreq"]
    x = raw.get_data(picks=["C3", "C4"])[:, : int(60 * sfreq)] * 1e6
    curve = accuracy_delay_curve(x, sfreq, (8.0, 13.0))
    assert list(curve) == list(CURVE_DELAYS_S)
    r = list(curve.values())
    assert r == sorted(r)  # shorter designs pay in accuracy
    # in log power (the bar's domain), within the range the frontier reports for S001 C3/C4
    # (0-ms design 0.505, 100-ms 0.790 on whole runs; benchmarks/RESULTS.md)
    assert 0.35 < curve[0.0] < 0.7 and 0.65 < curve[0.1] < 0.97


def test_curve_is_empty_for_a_baseline_too_short_to_fit_and_score(rng):
    assert accuracy_delay_curve(rng.standard_normal((2, 700)), 250.0, (8.0, 13.0)) == {}
    # non-finite samples (gaps) do not poison the curve
    x = rng.standard_normal((2, 250 * 20))
    x[0, 100:140] = np.nan
    assert all(np.isfinite(v) for v in accuracy_delay_curve(x, 250.0, (8.0, 13.0)).values())


def test_ideal_envelope_of_a_pure_rhythm_is_its_amplitude():
    t = np.arange(5000) / 250.0
    env = ideal_envelope(3.0 * np.sin(2 * np.pi * 10.0 * t), 250.0, (8.0, 13.0))
    np.testing.assert_allclose(env[500:-500], 3.0, rtol=1e-6)


def test_choose_rule_takes_the_shortest_delay_close_to_the_best_within_the_budget():
    curve = {0.0: 0.55, 0.02: 0.64, 0.05: 0.65, 0.1: 0.90}
    assert choose_delay(curve, max_delay_s=0.05) == 0.02  # 0.64 is within 0.02 of 0.65; 100 ms is over
    assert choose_delay({0.0: 0.80, 0.02: 0.81, 0.05: 0.90}, max_delay_s=0.05) == 0.05
    assert choose_delay({0.1: 0.9}) is None
    # the default budget: designs up to -10 ms (read 40-46 ms late on real EEG, the loop included)
    curve = {-0.03: 0.50, -0.02: 0.55, -0.01: 0.60, -0.005: 0.62, 0.0: 0.64, 0.05: 0.75}
    assert choose_delay(curve) == -0.01
    assert choose_delay({-0.02: 0.82, -0.01: 0.835, -0.005: 0.84, 0.0: 0.86}) == -0.01  # a flat curve: faster
    # with effective delays, r where each design is read (what the bar shows) decides
    eff = {-0.03: (0.03, 0.70), -0.02: (0.035, 0.79), -0.01: (0.04, 0.795), -0.005: (0.042, 0.80), 0.0: (0.05, 0.82)}
    assert choose_delay(curve, eff) == -0.02
    # a design the baseline reads far too late is never taken, however well it scores there (the
    # -40-ms design read at 273 ms on a 13.5-s Muse baseline of S001R05)
    eff = {-0.04: (0.273, 0.275), -0.03: (0.09, 0.20), -0.02: (0.05, 0.25), -0.01: (0.062, 0.281), 0.0: (0.07, 0.29)}
    assert choose_delay({d: 0.2 for d in eff}, eff) == -0.01
    eff[-0.04] = (0.0, 0.275)  # read at the lag search's floor: as suspect
    assert choose_delay({d: 0.2 for d in eff}, eff) == -0.01
    eff[-0.04] = (0.03, 0.275)
    assert choose_delay({d: 0.2 for d in eff}, eff) == -0.04


CHOOSE = """
[protocol]
name = "choose-test"
[signal]
targets = ["C3", "C4"]
reference = "laplacian"
delay_s = {delay}
[[blocks]]
label = "baseline"
kind = "exploration"
duration_s = 24
[[blocks]]
label = "train"
kind = "integration"
duration_s = 6
feedback = true
"""


def test_protocol_accepts_choose_and_names_the_key_on_anything_else():
    assert parse_protocol(CHOOSE.format(delay='"choose"')).signal.delay_s == "choose"
    with pytest.raises(ProtocolError, match=r"\[signal\] delay_s.*'fast'.*choose"):
        parse_protocol(CHOOSE.format(delay='"fast"'))


def test_choose_installs_the_curve_s_delay_and_logs_the_curve():
    proto = parse_protocol(CHOOSE.format(delay='"choose"'))
    sim = MuSimulator(script=SimulationScript(), seed=4)
    proc = Processor(proto, sim.sfreq, sim.ch_names, 4000.0)
    events = []
    while not proc.engine.finished:
        proc.step(sim.generate(10)[0])
        events += proc.engine.drain_events()
    curve = proc.accuracy_curve
    assert list(curve) == list(CURVE_DELAYS_S) and all(0 < r <= 1 for r in curve.values())
    assert proc.chain.delay_s == choose_delay(curve, proc.effective_delays) <= CHOOSE_MAX_DELAY_S
    assert proc.chain.estimator.delay_s == proc.chain.delay_s  # the refitted estimator uses it
    texts = [e.text for e in events if e.text.startswith("accuracy_curve/")]
    assert len(texts) == 1 and f"chosen_delay={1000 * proc.chain.delay_s:.0f}ms" in texts[0]


def test_fixed_delay_protocols_keep_their_delay_but_still_show_the_curve():
    proto = parse_protocol(CHOOSE.format(delay="0.02"))
    sim = MuSimulator(script=SimulationScript(), seed=5)
    proc = Processor(proto, sim.sfreq, sim.ch_names, 4000.0)
    while not proc.engine.finished:
        proc.step(sim.generate(10)[0])
    assert proc.chain.delay_s == 0.02 and len(proc.accuracy_curve) == len(CURVE_DELAYS_S)


def test_effective_delay_finds_a_known_lag():
    sfreq = 250.0
    _, env = scripted_mu_signal(40.0, sfreq)
    rng = np.random.default_rng(3)
    truth = np.log10(env ** 2) + 0.3 * np.convolve(rng.standard_normal(env.size), np.ones(25) / 5, "same")
    electrode = (np.arange(env.size) * 1e9 / sfreq).astype(np.int64)
    fb_ns = electrode + 37_000_000  # the feedback: the truth, seen 37 ms late, observed every 4 ms
    delay, r = effective_delay(fb_ns, truth, electrode, truth)
    assert abs(delay - 37) <= 4 and r > 0.999  # one sample (4 ms) of zero-order-hold ambiguity
    smooth = truth.copy()  # a causal one-pole smoother adds part of its own delay (16 ms)
    for i in range(1, smooth.size):
        smooth[i] = smooth[i - 1] + 0.2 * (smooth[i] - smooth[i - 1])
    delay, r = effective_delay(fb_ns, smooth, electrode, truth)
    assert 37 + 4 <= delay <= 37 + 16 + 4 and 0.8 < r < 0.999
    steps = np.nonzero(np.diff(env))[0] + 1
    cross = step_crossings_ms(fb_ns, np.log10(env ** 2), electrode[steps])
    assert cross.size >= 10 and np.all(np.abs(cross - 37) <= 4)


def test_true_log_power_combines_targets_like_the_si():
    t = np.arange(5000) / 250.0
    ref = np.array([2.0 * np.sin(2 * np.pi * 10 * t), 4.0 * np.sin(2 * np.pi * 11 * t)])
    mean = true_log_power(ref, 250.0, (8.0, 13.0))[500:-500]
    np.testing.assert_allclose(mean, (np.log10(2.0) + np.log10(8.0)) / 2, atol=1e-6)
    asym = true_log_power(ref, 250.0, (8.0, 13.0), "asymmetry")[500:-500]
    np.testing.assert_allclose(asym, np.log10(4.0), atol=1e-6)


def test_burst_relay_delivers_the_cyton_s_packets_in_bursts_to_brainflow():
    """An FTDI latency timer of 16 ms, emulated: BrainFlow's own driver reads the emulated Cyton
    through the relay; every sample arrives, exactly as sent, in chunks of whole bursts."""
    import time

    from neurofeed.devtools.cyton_emulator import CytonEmulator
    from neurofeed.hardware.boards import get_board
    from neurofeed.hardware.sources.brainflow import BrainFlowSource

    data, _ = scripted_mu_signal(20.0, 250.0)
    emu = CytonEmulator(data, loop=False).start()
    relay = BurstRelay(emu.port, 0.016)
    src = BrainFlowSource(get_board("cyton"), serial_port=relay.port)
    try:
        src.start()
        chunks, n = [], 0
        deadline = time.monotonic() + 30.0  # a generous bound for a busy machine; it ends at 500 samples
        while n < 500 and time.monotonic() < deadline:
            c = src.read()
            if c is not None:
                chunks.append(c)
                n += c.n_samples
    finally:
        src.stop()
        relay.close()
        emu.stop()
        src.board = None  # release BrainFlow's handle now, not at interpreter exit
    got = np.concatenate([c.data for c in chunks], axis=1)
    assert got.shape[1] >= 500 and src.dropped_samples == 0
    np.testing.assert_array_equal(got[:, :500], emu.sent_uv(0, 500))
    # 16 ms at 250 Hz is 4 samples: chunks come as whole bursts, not one sample at a time
    sizes = np.array([c.n_samples for c in chunks[1:-1]])
    assert np.median(sizes) >= 4
    written = emu.write_times_ns(0, 500)
    assert all(c.arrival_ns >= written[c.first_sample + c.n_samples - 1] for c in chunks if c.first_sample + c.n_samples <= 500)


def test_bench_latency_measures_electrode_to_feedback_through_the_loop(tmp_path):
    """The harness end to end (short): emulated Cyton → BrainFlow → pipeline → LSL → listener.
    Asserts what the harness controls: every stage was stamped, the loop's stages add up to no
    more than the electrode-to-feedback figure, and the feedback follows the envelope."""
    import argparse

    from neurofeed.devtools.bench import electrode_to_feedback_benchmark

    args = argparse.Namespace(protocol="demo", seconds=16.0, estimator=None, delay_s=None, burst_ms=0.0,
                              display=False, busy_poll=False)
    r = electrode_to_feedback_benchmark(args)
    assert "error" not in r and r["dropped_samples"] == 0
    e, est = r["electrode_to_feedback_ms"], r["estimator_only_ms"]
    assert set(e) >= {"effective_delay", "r", "step_p50", "step_p90"}
    assert e["r"] > 0.7  # the feedback follows the true envelope
    # the loop only adds delay to the estimator's own (1-ms lag grid, 4-ms samples)
    assert e["effective_delay"] >= est["effective_delay"] - 4
    for stage in ("electrode_to_driver_read", "chunk_to_publish", "publish_to_outlet", "outlet_to_listener"):
        assert r["stages_ms"][stage]["p50"] >= 0, stage
    assert r["listener_samples"] > 0.5 * r["updates"]  # the listener saw the outlet's samples
    # the bar the participant is shown: the demo's bar is the SI itself (no smoothing, no easing),
    # on its own channel, so the painted bar is read as early as si_combined
    bar, painted = r["electrode_to_bar_ms"], r["electrode_to_painted_bar_ms"]
    assert r["bar_smoothing_s"] == 0.0 and r["bar_easing_s"] == 0.0 and bar["r"] > 0.7
    assert abs(bar["effective_delay"] - e["effective_delay"]) <= 2
    assert painted["effective_delay"] == bar["effective_delay"] and r["signal_kind"] == "scripted"


def test_each_design_is_read_later_than_designed_on_real_eeg():
    from neurofeed.dsp.accuracy import delay_curves
    from neurofeed.hardware.sources.edf import read_raw

    raw = read_raw(EEG / "S001R03.edf")
    sfreq = raw.info["sfreq"]
    x = raw.get_data(picks=["C3", "C4"])[:, : int(60 * sfreq)] * 1e6
    curve, effective = delay_curves(x, sfreq, (8.0, 13.0))
    assert list(effective) == list(curve)
    lags = [effective[d][0] for d in curve]
    # a causal 5-Hz-wide envelope is read late: the 0-ms design lands tens of ms after its design
    # (44 ms on whole runs, benchmarks/RESULTS.md), and longer designs land later still
    zero = list(curve).index(0.0)
    assert 0.02 <= lags[zero] <= 0.1 and lags == sorted(lags) and lags[-1] >= 0.1
    # forecasting designs are read earlier, but never before the electrode (the search starts at 0)
    assert all(0.0 <= lag < lags[zero] for lag in lags[:zero])
    for d, r in curve.items():  # the best lag is at least as good as the designed one
        assert effective[d][1] >= r - 1e-12


def _run_to_feedback(proto, seed, switch_at_s=None, delay_s=None, seconds=None):
    """A Processor on the simulator through the protocol; optionally the clinician picks
    ``delay_s`` at ``switch_at_s``. Returns (processor, SI per update, events)."""
    sim = MuSimulator(script=SimulationScript(), seed=seed)
    proc = Processor(proto, sim.sfreq, sim.ch_names, 4000.0)
    si, events, n = [], [], 0
    while not proc.engine.finished:
        if switch_at_s is not None and n == int(switch_at_s * sim.sfreq):
            proc.control("set_delay", delay_s)
        st = proc.step(sim.generate(10)[0])
        n += 10
        si.append((n, st.si_combined))
        events += proc.engine.drain_events()
    return proc, np.array(si), events


def test_clinician_changes_the_delay_mid_feedback_without_a_transient():
    proto = parse_protocol(CHOOSE.format(delay="0.05"))
    switched, si_a, ev = _run_to_feedback(proto, 7, switch_at_s=26.0, delay_s=0.0)
    from_start, si_b, _ = _run_to_feedback(parse_protocol(CHOOSE.format(delay="0.0")), 7)
    assert switched.chain.delay_s == 0.0 and switched.chain.estimator.delay_s == 0.0
    assert [e.text for e in ev if e.text.startswith("set_delay/")] == ["set_delay/0.0"]
    # from the switch on, the feedback is what a 0-ms design fitted to the same baseline gives,
    # with the running history: same baseline power, same SI, no start-up step
    np.testing.assert_allclose(switched.engine.baseline_uv2, from_start.engine.baseline_uv2, rtol=1e-9)
    # the running thresholds (SI units, relative to the baseline) are kept, not re-derived
    kept = [e.text for e in ev if e.text.startswith("baseline/")]
    assert len(kept) == 2 and kept[0].split("/threshold_up")[1] == kept[1].split("/threshold_up")[1]
    after = si_a[:, 0] > int(26.0 * 250)
    assert after.sum() >= 90  # 4 s of feedback after the switch, 10-sample updates
    np.testing.assert_allclose(si_a[after, 1], si_b[after, 1], rtol=1e-7, atol=1e-9)
    # before the switch it was the 50-ms design's feedback (a different estimate)
    before = (si_a[:, 0] > int(25.0 * 250)) & ~after
    assert np.abs(si_a[before, 1] - si_b[before, 1]).max() > 1e-3


def test_a_delay_out_of_range_or_for_an_estimator_without_one_is_refused_not_raised():
    proto = parse_protocol(CHOOSE.format(delay="0.05"))
    proc, _, ev = _run_to_feedback(proto, 8, switch_at_s=25.0, delay_s=-0.5)
    assert proc.chain.delay_s == 0.05
    refused = [e.text for e in ev if e.text.startswith("control_refused/set_delay/")]
    assert len(refused) == 1 and "-0.5" in refused[0] and "expected -0.05 to 0.25 s" in refused[0]
    iir = parse_protocol(CHOOSE.format(delay="0.05").replace('reference = "laplacian"',
                                                             'reference = "laplacian"\nestimator = "iir"'))
    proc, _, ev = _run_to_feedback(iir, 8, switch_at_s=25.0, delay_s=0.02)
    assert any("iir estimator has no designed delay" in e.text for e in ev)


def test_a_delay_chosen_before_the_baseline_ends_is_the_one_fitted():
    proto = parse_protocol(CHOOSE.format(delay='"choose"'))
    proc, _, ev = _run_to_feedback(proto, 9, switch_at_s=5.0, delay_s=0.1)
    assert proc.chain.delay_s == 0.1 and proc.chain.estimator.delay_s == 0.1  # the clinician overrides "choose"
    assert not any("chosen_delay" in e.text for e in ev)


ADAPTIVE = CHOOSE.replace('delay_s = {delay}', 'delay_s = {delay}\n[threshold]\nmode = "adaptive"').replace(
    'duration_s = 6\nfeedback = true', 'duration_s = 6\nfeedback = true\n[[blocks]]\nlabel = "baseline"\n'
    'kind = "exploration"\nduration_s = 4\n[[blocks]]\nlabel = "train2"\nkind = "integration"\nduration_s = 6\nfeedback = true')


def _drive(proto, seed, plan):
    """Run the simulator through ``proto`` applying ``plan`` [(second, callable(proc))]."""
    sim = MuSimulator(script=SimulationScript(), seed=seed)
    proc = Processor(proto, sim.sfreq, sim.ch_names, 4000.0)
    events, n, plan = [], 0, sorted(plan, key=lambda p: p[0])
    while not proc.engine.finished:
        while plan and n >= int(plan[0][0] * sim.sfreq):
            plan.pop(0)[1](proc)
        proc.step(sim.generate(10)[0])
        n += 10
        events += proc.engine.drain_events()
    return proc, events


def test_set_delay_keeps_the_running_thresholds_and_rewrites_only_the_baseline_s_record():
    proto = parse_protocol(ADAPTIVE.format(delay="0.05"))
    seen = {}

    def nudge(proc):
        proc.control("nudge_threshold", 0.3)
        seen["nudged"] = dict(proc.engine.thresholds)

    def same(proc):
        seen["before_same"] = proc.engine.baseline_uv2.copy()
        proc.control("set_delay", 0.05)  # the design in use: nothing changes
        seen["after_same"] = proc.engine.baseline_uv2.copy()

    def switch(proc):
        seen["before"] = dict(proc.engine.thresholds)
        proc.control("set_delay", 0.02)
        seen["after"] = dict(proc.engine.thresholds)

    # baseline 0-24 s, train 24-30, a rest also labelled "baseline" 30-34, train2 34-40
    proc, ev = _drive(proto, 11, [(25.0, nudge), (26.0, same), (36.0, switch)])
    assert seen["after"] == seen["before"]  # adapted and nudged thresholds survive the new design
    np.testing.assert_array_equal(seen["before_same"], seen["after_same"])
    assert len([e for e in ev if e.text.startswith("baseline/")]) == 2  # the end of the baseline, then 20 ms
    first, rest = [b for b in proc.engine.blocks if b.label == "baseline"]
    assert first.n_power == first.end_sample - first.start_sample  # the baseline's record, rewritten
    assert rest.n_power == rest.end_sample - rest.start_sample  # the later "baseline" rest kept its own


def test_set_delay_refits_on_the_baseline_as_the_current_spatial_filter_reads_it():
    from neurofeed.dsp.estimators import WCFIREnvelope

    proto = parse_protocol(CHOOSE.format(delay="0.05"))
    seen = {}

    def bad(proc):
        seen["x0"] = proc.chain.baseline_spatial()
        proc.control("mark_bad_channel", "Cz")

    def switch(proc):
        proc.control("set_delay", 0.0)
        seen["x1"] = proc.chain.baseline_spatial()
        seen["taps"] = proc.chain.estimator.taps()

    proc, _ = _drive(proto, 12, [(25.0, bad), (26.0, switch)])
    assert np.abs(seen["x1"] - seen["x0"]).max() > 1e-3  # Cz was in the Laplacian: the referenced baseline changed
    ref = WCFIREnvelope(proc.sfreq, proc.chain.band_hz, 2, delay_s=0.0)
    ref.fit(seen["x1"])
    np.testing.assert_allclose(seen["taps"], ref.taps(), rtol=1e-9, atol=1e-12)


def test_a_failed_redesign_keeps_the_running_filter_and_junk_is_journaled_as_nan():
    from neurofeed.protocol.engine import parse_input

    proto = parse_protocol(CHOOSE.format(delay="0.05"))
    seen = {}

    def broken(proc):
        seen["est"] = proc.chain.estimator
        real = proc.chain.check_response

        def fail():
            proc.chain.check_response = real  # the restore re-checks the running design
            raise NeurofeedError("the response check failed")
        proc.chain.check_response = fail
        proc.control("set_delay", 0.1)
        seen["after"] = (proc.chain.estimator, proc.chain.delay_s)
        proc.control("set_delay", "fast")

    proc, ev = _drive(proto, 13, [(25.0, broken)])
    assert seen["after"] == (seen["est"], 0.05)
    texts = [e.text for e in ev]
    assert "set_delay/0.1" in texts and "set_delay/nan" in texts
    assert sum(t.startswith("control_refused/set_delay/") for t in texts) == 2
    assert parse_input("set_delay/nan")[0] == "set_delay"  # replay reads it back and refuses it again


def test_a_delay_set_during_the_baseline_applies_at_once():
    proto = parse_protocol(CHOOSE.format(delay="0.05"))
    seen = {}
    proc, _ = _drive(proto, 14, [(5.0, lambda p: (p.control("set_delay", 0.02),
                                                 seen.update(d=p.chain.estimator.delay_s, hist=p.delay_history[:])))])
    assert seen["d"] == 0.02 and seen["hist"] == [(0, 0.05), (1250, 0.02)]
    assert proc.chain.estimator.delay_s == 0.02 and proc.chain.estimator.fitted
    assert proc.summary()["delay_s_history"] == [[0, 0.05], [1250, 0.02]]


def test_the_terminal_and_the_printed_summary_show_the_participant_s_designs():
    import io
    import types

    from neurofeed.live.session import print_summary
    from neurofeed.ui.terminal import TerminalView

    curve = {0.0: 0.55, 0.02: 0.64, 0.05: 0.75, 0.1: 0.88}
    effective = {0.0: (0.044, 0.68), 0.02: (0.056, 0.75), 0.05: (0.078, 0.82), 0.1: (0.112, 0.9)}
    out = io.StringIO()
    print_summary({"accuracy_curve": {"0ms": 0.55, "50ms": 0.75}, "delay_s": 0.05,
                   "effective_delay_ms": {"0ms": {"effective_delay": 44.0, "r": 0.68}}}, out)
    assert ("bar timing for this participant: in use 50 ms (r 0.75); faster, less exact 44 ms (r 0.68)"
            in out.getvalue()), out.getvalue()
    # the terminal view prints the curve once, when the baseline's end brings it
    proc = types.SimpleNamespace(accuracy_curve=curve, effective_delays=effective,
                                 chain=types.SimpleNamespace(delay_s=0.05))
    class Pipe:  # two polls while running, then the session ends
        processor, latest, _runs = proc, types.SimpleNamespace(seq=0), iter([True, True, False])

        @property
        def running(self):
            return next(self._runs)

    pipe = Pipe()
    out = io.StringIO()
    TerminalView(pipe, stream=out, interval_s=0.001).run_until_done()
    text = out.getvalue()
    assert text.count("bar timing for this participant") == 1
    assert ("in use 78 ms (r 0.82); faster, less exact 44 ms (r 0.68); steadier, more exact 112 ms (r 0.90)"
            in text), text
