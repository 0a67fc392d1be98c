"""`neurofeed bench latency`: the live pipeline's latency, stage by stage, on any board."""

from __future__ import annotations

import platform
import tempfile
import time

import numpy as np

from . import __version__
from .protocol.schema import load_protocol


class _StepLog:
    """Records (published time, samples processed, mean power) per update, preallocated."""

    def __init__(self, capacity=1 << 18):
        self.pub = np.zeros(capacity, dtype=np.int64)
        self.n = np.zeros(capacity, dtype=np.int64)
        self.power = np.zeros(capacity)
        self.i = 0

    def on_state(self, st):
        if self.i < self.pub.size and st.power_uv2.size:
            self.pub[self.i] = st.published_ns
            self.n[self.i] = st.sample_index
            self.power[self.i] = float(st.power_uv2.mean())
            self.i += 1


def signal_to_feedback_ms(log: _StepLog, steps_s, sfreq: float, t0_ns: int) -> float | None:
    """Median time from a scripted mu step (its sample's acquisition time) to the published
    feedback power crossing half of the step's change."""
    n, pub, amp = log.n[: log.i], log.pub[: log.i], np.sqrt(np.maximum(log.power[: log.i], 0))
    out = []
    for step in steps_s:
        s = int(round(step * sfreq))
        pre = amp[(n > s - sfreq) & (n <= s)]
        post = amp[(n > s + sfreq) & (n <= s + 2 * sfreq)]
        if pre.size < 3 or post.size < 3:
            continue
        half = 0.5 * (np.median(pre) + np.median(post))
        after = np.nonzero(n > s)[0]
        falling = np.median(post) < np.median(pre)
        hit = [i for i in after if (amp[i] < half if falling else amp[i] > half)]
        if hit:
            step_ns = t0_ns + int(s * 1e9 / sfreq)  # when the step's sample was acquired
            out.append((pub[hit[0]] - step_ns) / 1e6)
    return float(np.median(out)) if out else None


def latency_benchmark(args) -> dict:
    """Run the live pipeline for ``args.seconds`` and return the latency figures."""
    from .session import build_session, finish_session, open_source, parse_channel_map
    from .sources.simulated import SimulationScript

    protocol = load_protocol(args.protocol)
    scale = (args.seconds + 10.0) / protocol.total_duration_s()  # the protocol spans the whole run
    source = open_source(args.board, board_id=args.board_id, serial_port=args.serial_port, mac_address=args.mac_address,
                         file=args.file, lsl_name=args.lsl_name, lsl_type=args.lsl_type,
                         channel_map=parse_channel_map(args.channel_map), protocol=protocol, seconds_scale=scale)
    steps = []
    if getattr(source, "name", "") == "simulated":
        # a clean step every 4 s (1.0 -> 0.4 -> 1.0), no artifacts, for signal_to_feedback_ms
        period = 4.0
        script = SimulationScript([(t, t + period / 2, 0.4) for t in np.arange(8.0, args.seconds + 10, period)])
        source.sim.script = script
        source.sim.modulation = 0.0
        steps = [t for t, _, _ in script.mu_factor] + [t + period / 2 for t, _, _ in script.mu_factor]
    with tempfile.TemporaryDirectory() as tmp:
        pipe, rec = build_session(source, protocol, "BENCH", tmp, scale, record=True, lsl=True,
                                  busy_poll=args.busy_poll)
        log = _StepLog()
        pipe.sinks.append(log)
        if args.display:
            from .feedback.display import run_windows

            run_windows(pipe, seconds=args.seconds)
        else:
            pipe.start()
            deadline = time.time() + args.seconds
            while time.time() < deadline and pipe.running:
                time.sleep(0.05)
            pipe.stop("benchmark complete")
        summary = finish_session(pipe, rec)
    t = summary["timing"]
    result = {
        "board": source.name, "seconds": args.seconds, "sfreq": source.sfreq, "n_channels": len(source.ch_names),
        "estimator": pipe.processor.chain.estimator.describe(),
        "sample_to_feedback_ms": t.get("sample_to_feedback_ms"), "compute_us": t.get("compute_us"),
        "sample_age_ms": t.get("sample_age_ms"), "update_hz": t.get("update_hz"),
        "updates": t.get("updates"), "drift_ms_per_hour": t.get("drift_ms_per_hour"),
        "dropped_samples": summary.get("dropped_samples", 0), "signal_lost_events": summary.get("signal_lost_events", 0),
        "display": bool(args.display), "busy_poll": bool(args.busy_poll), "neurofeed": __version__, "python": platform.python_version(),
        "machine": platform.machine(),
    }
    if args.display:
        result["frame_ms"] = getattr(pipe, "frame_stats", None)
    if steps:
        result["signal_to_feedback_ms"] = signal_to_feedback_ms(log, steps, source.sfreq, pipe.t0_ns)
    if pipe.error is not None:
        result["error"] = str(pipe.error)
    return result


def print_latency(r: dict) -> None:
    """A readable table of the figures."""
    def row(name, d, keys):
        if d:
            print(f"  {name:<24s} " + "  ".join(f"{k} {d[k]:8.3f}" for k in keys if k in d))
    print(f"latency on {r['board']} ({r['sfreq']:g} Hz, {r['n_channels']} ch), {r['seconds']:g} s, "
          f"{r['updates']} updates at {r.get('update_hz') or 0:.1f}/s, estimator {r['estimator']['estimator']}")
    row("sample_to_feedback_ms", r["sample_to_feedback_ms"], ("p50", "p95", "p99", "max"))
    row("compute_us", r["compute_us"], ("p50", "p99"))
    row("sample_age_ms", r.get("sample_age_ms"), ("p50", "p99"))
    row("frame_ms", r.get("frame_ms"), ("p50", "p99"))
    print(f"  drift_ms_per_hour        {r.get('drift_ms_per_hour') or 0:.3f}")
    print(f"  dropped_samples          {r['dropped_samples']}")
    if "signal_to_feedback_ms" in r:
        print(f"  signal_to_feedback_ms    {r['signal_to_feedback_ms']}")
