"""The signal check a clinician runs before a session (``neurofeed check``).

Per channel it measures, on a few seconds of what the amplifier sends:

- ``offset_uv``: the DC offset (median of the raw signal, µV). A DC-coupled amplifier such as
  the Cyton's ADS1299 shows tens of mV; neurofeed's conditioning stage removes that, but an
  offset near the amplifier's range means a loose electrode that will rail. None where the
  amplifier removes the offset itself (``ac_coupled`` boards: the Muse); a signal sitting beyond
  half the range still fails there.
- ``line_noise_uv``: the amplitude (µV, peak) of the mains component at the line frequency.
- ``rms_uv``: the RMS in 1–40 Hz (µV) after the offset is removed: EEG is 5–50 µV; far more is
  movement or a bad contact, far less a bridged or dead channel.
- ``railed`` / ``flat``: samples at 98 % of the range / no variation at all.
- ``impedance_kohm``: where the board can measure it (Cyton and Cyton-Daisy lead-off through
  BrainFlow's ``config_board``), from the 31.25-Hz lead-off current's voltage, as the OpenBCI GUI
  does; None elsewhere.
- ``contact``: ``"good"``, ``"fair"`` (passes, but the RMS or the mains is above half its limit),
  ``"poor"`` (fails) or ``"none"`` (flat or railed: no electrode on the skin). On a board without
  impedance (Muse, Ganglion) this is the contact judgement, from the channel's variance, mains and
  railing, as the Muse apps' "horseshoe" judges it from variance.
- ``advice``: what to do about a failing channel: the board config's ``check_advice`` for the
  site (e.g. "move the headband" for a Muse sensor, "wet the AUX electrode"), else "re-seat".

Every board gives the same keys (None where the device cannot say).

Then, when asked (interactive by default), a blink test and a jaw-clench test confirm that the
session's own artifact gates (the protocol's :class:`~neurofeed.dsp.chain.MuChain`) see them.

The measurements use scipy.signal (Welch, zero-phase band-pass): this is an offline look at a
short window, not the feedback path, so non-causal filters are right here.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import signal

from ..core.errors import NeurofeedError
from ..dsp.spectra import welch_psd

# OpenBCI Cyton lead-off: 6 nA at fDR/4 (31.25 Hz at 250 Hz) through a 2.2 kΩ series resistor
# (ADS1299 datasheet; the OpenBCI GUI's impedance formula).
LEADOFF_CURRENT_A = 6e-9
LEADOFF_SERIES_OHM = 2200.0
LEADOFF_HZ = 2.048e6 / 2 ** 16  # the ADS1299's AC lead-off, fCLK / 2^16 = 31.25 Hz whatever the data rate
# Cyton channel keys for the lead-off command "z <ch> <P> <N> Z": 1–8 on the Cyton, Q…I on the Daisy.
CYTON_CHANNEL_KEYS = "12345678QWERTYUI"


@dataclass
class SignalCheckLimits:
    """Pass/fail limits of the signal check (µV, kΩ).

    Attributes
    ----------
    offset_fraction : float
        An offset above this share of the amplifier range fails (the channel would rail with
        any drift); 0.5 of the Cyton's ±187.5 mV is 94 mV.
    line_noise_uv : float
        Mains amplitude above this fails (the notch copes with less; more means a poor contact).
    rms_max_uv, rms_min_uv : float
        1–40 Hz RMS outside this range fails (movement or bad contact; bridged or dead channel).
    impedance_kohm : float
        Lead-off impedance above this fails (wet electrodes are below 10 kΩ when seated well).
    """

    offset_fraction: float = 0.5
    line_noise_uv: float = 20.0
    rms_max_uv: float = 100.0
    rms_min_uv: float = 0.5
    impedance_kohm: float = 50.0


@dataclass
class ChannelSignalCheck:
    """The signal check of one channel (see the module docstring for each measure)."""

    offset_uv: float | None
    line_noise_uv: float
    rms_uv: float
    impedance_kohm: float | None
    railed: bool
    flat: bool
    ok: bool
    advice: str = ""
    contact: str = ""


@dataclass
class ArtifactTest:
    """Whether the session's gates saw an instructed blink or jaw clench."""

    instruction: str
    seen: bool
    gated_s: float
    reasons: list = field(default_factory=list)
    advice: str = ""


def acquire(source, seconds: float, timeout_s: float | None = None) -> np.ndarray:
    """Read ``seconds`` of samples from a started source (n_channels × n_samples, µV).

    Waits on the source itself (no fixed sleeps); gives up after ``timeout_s`` (default twice
    the duration + 5 s) with a clear error naming the source.
    """
    want = int(round(seconds * source.sfreq))
    parts, have = [], 0
    limit = time.monotonic() + (timeout_s if timeout_s is not None else 2 * seconds + 5.0)
    while have < want:
        chunk = source.read()
        if chunk is None:
            if getattr(source, "finished", False):
                break
            if time.monotonic() > limit:
                break
            continue
        parts.append(chunk.data)
        have += chunk.n_samples
    if have == 0:
        raise NeurofeedError(f"No samples from {source.name} within {seconds:g} s: is the board on and streaming?")
    return np.concatenate(parts, axis=1)[:, :want]


CONTACT_GRADES = ("good", "fair", "poor", "none")


def measure_channels(data: np.ndarray, sfreq: float, ch_names, range_uv: float, line_hz: float,
                     impedance_kohm: dict | None = None, limits: SignalCheckLimits | None = None,
                     ac_coupled: bool = False, actions: dict | None = None) -> dict:
    """Per-channel measures and pass/fail with what to do.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_samples)
        Raw samples (µV), as the amplifier sends them (offsets included).
    sfreq, range_uv, line_hz : float
        Sampling rate (Hz), amplifier range (± µV), mains frequency (Hz).
    impedance_kohm : dict, optional
        Channel name -> measured impedance (kΩ).
    ac_coupled : bool
        The amplifier removes the DC offset itself: ``offset_uv`` is None (the median still
        fails a channel when it sits beyond half the range).
    actions : dict, optional
        Channel name -> what to do when it fails (default ``"re-seat <name>"``).

    Returns
    -------
    dict
        Channel name -> :class:`ChannelSignalCheck`.
    """
    lim = limits or SignalCheckLimits()
    x = np.asarray(data, dtype=np.float64)
    finite = np.isfinite(x)
    out = {}
    hi = min(40.0, 0.45 * sfreq)
    band = signal.butter(4, [1.0, hi], btype="bandpass", fs=sfreq, output="sos")
    for i, name in enumerate(ch_names):
        xi = x[i][finite[i]]
        if xi.size < 8:
            out[name] = ChannelSignalCheck(None if ac_coupled else math.nan, math.nan, math.nan, None, False, True,
                                           False, f"{name}: no finite samples; check the electrode and its lead",
                                           "none")
            continue
        m = _measure_one(xi, sfreq, range_uv, line_hz, band)
        imp = None if not impedance_kohm else impedance_kohm.get(name)
        problems = _problems(m, imp, range_uv, line_hz, hi, lim, ac_coupled)
        action = (actions or {}).get(name) or f"re-seat {name}"
        advice = f"{action}: {', '.join(problems)}" if problems else ""
        if m["railed"] or m["flat"]:
            # the lead-off voltage of an electrode pinned at the rail (or dead) is no impedance:
            # the formula would print 0 kΩ, the best value there is, for the worst contact
            imp = None
        out[name] = ChannelSignalCheck(None if ac_coupled else m["offset"], m["line"], m["rms"], imp, m["railed"],
                                       m["flat"], not problems, advice, _contact_grade(m, problems, lim))
    return out


def _measure_one(xi: np.ndarray, sfreq: float, range_uv: float, line_hz: float, band) -> dict:
    """One channel's finite samples ``xi`` (µV): ``offset`` (median, µV), ``railed`` (over 1 % of the
    samples at 98 % of the range), ``flat`` (peak to peak under 0.5 µV), ``rms`` (µV, in the ``band``
    pass-band, zero-phase) and ``line`` (the mains amplitude at ``line_hz``, µV peak; NaN above Nyquist)."""
    offset = float(np.median(xi))
    centred = xi - offset
    rms = float(np.std(signal.sosfiltfilt(band, centred))) if xi.size > 60 else float(np.std(centred))
    line = math.nan
    if 0 < line_hz < sfreq / 2:
        f, pxx = welch_psd(centred, sfreq)
        sel = np.abs(f - line_hz) <= 1.0
        # the density integrated over the line's bins is the sinusoid's power A²/2
        line = float(np.sqrt(2.0 * pxx[sel].sum() * (f[1] - f[0]))) if sel.any() else math.nan
    return {"offset": offset, "railed": bool(np.mean(np.abs(xi) >= 0.98 * range_uv) > 0.01),
            "flat": bool(np.ptp(xi) < 0.5), "rms": rms, "line": line}


def _problems(m: dict, imp, range_uv: float, line_hz: float, hi: float, lim: SignalCheckLimits,
              ac_coupled: bool) -> list[str]:
    """What fails in one channel's measures ``m`` (:func:`_measure_one`) and impedance ``imp`` (kΩ or
    None) against the limits, in words (empty: the channel passes)."""
    railed, flat, offset, rms, line = m["railed"], m["flat"], m["offset"], m["rms"], m["line"]
    problems = []
    if railed:
        problems.append(f"railed at ±{range_uv / 1000:g} mV")
    elif abs(offset) > lim.offset_fraction * range_uv:
        problems.append(f"signal sits at {offset:.0f} µV, beyond half the ±{range_uv:g} µV range" if ac_coupled
                        else f"offset {offset / 1000:.0f} mV")
    if flat and not railed:  # a channel pinned at the rail is flat too; the rail says why
        problems.append("flat (no signal)")
    elif not railed and rms > lim.rms_max_uv:
        problems.append(f"noisy: {rms:.0f} µV RMS in 1–{hi:g} Hz")
    elif not railed and rms < lim.rms_min_uv:
        problems.append(f"almost no signal: {rms:.2f} µV RMS")
    if line == line and line > lim.line_noise_uv:
        problems.append(f"mains {line:.0f} µV at {line_hz:g} Hz")
    if imp is not None and imp > lim.impedance_kohm:
        problems.append(f"impedance {imp:.0f} kΩ")
    return problems


def _contact_grade(m: dict, problems: list[str], lim: SignalCheckLimits) -> str:
    """One of :data:`CONTACT_GRADES`: none (railed or flat), poor (fails), fair (passes with the RMS or
    the mains above half its limit), good."""
    if m["railed"] or m["flat"]:
        return "none"
    if problems:
        return "poor"
    if m["rms"] > 0.5 * lim.rms_max_uv or (m["line"] == m["line"] and m["line"] > 0.5 * lim.line_noise_uv):
        return "fair"
    return "good"


def channel_actions(source) -> dict:
    """Channel name -> what to do when it fails the check, from the board config's
    ``check_advice`` (by site, or ``"AUX"`` for the channels on the AUX input); {} elsewhere."""
    advice = getattr(getattr(source, "config", None), "check_advice", None) or {}
    aux = set(getattr(source, "aux_channels", ()) or ())
    out = {}
    for name in source.ch_names:
        text = advice.get("AUX") if name in aux else advice.get(name)
        if text:
            out[name] = f"{text} ({name} is on the AUX input)" if name in aux else text
    return out


def cyton_impedance_kohm(source, ch_names, seconds: float = 2.0) -> dict:
    """Lead-off impedance of each Cyton (or Cyton-Daisy) channel, one channel at a time.

    For each channel, BrainFlow's ``config_board("z<ch>10Z")`` drives the 6-nA lead-off
    current into its P input; the impedance is ``sqrt(2) · Vrms(31.25 Hz) / 6 nA − 2.2 kΩ``
    (the OpenBCI GUI's formula), then ``"z<ch>00Z"`` switches it off. Returns name -> kΩ.
    """
    fs = source.sfreq
    f0 = LEADOFF_HZ
    sos = signal.butter(2, [f0 - 2.0, f0 + 2.0], btype="bandpass", fs=fs, output="sos")
    out = {}
    for i, name in enumerate(ch_names[: len(CYTON_CHANNEL_KEYS)]):
        key = CYTON_CHANNEL_KEYS[i]
        source.config_board(f"z{key}10Z")
        try:
            x = acquire(source, seconds)[i]
        finally:
            source.config_board(f"z{key}00Z")
        x = x[np.isfinite(x)]
        skip = int(0.25 * fs)  # the switch-on transient
        vrms = float(np.std(signal.sosfiltfilt(sos, x - np.median(x))[skip:])) * 1e-6
        out[name] = max(0.0, (math.sqrt(2.0) * vrms / LEADOFF_CURRENT_A - LEADOFF_SERIES_OHM) / 1000.0)
    return out


def can_measure_impedance(source) -> bool:
    """True for boards whose lead-off neurofeed drives (Cyton and Cyton-Daisy through BrainFlow)."""
    return getattr(source, "board_id", None) in (0, 2) and hasattr(source, "config_board")


def artifact_test(source, chain_factory, instruction: str, reason: str, seconds: float, say) -> ArtifactTest:
    """Ask for an artifact and report whether the session's gate fired for ``reason`` meanwhile."""
    chain = chain_factory()
    say(f"  {instruction} (within {seconds:g} s)")
    data = acquire(source, seconds)
    step = max(1, int(round(0.04 * source.sfreq)))
    gated, reasons = 0, set()
    for k in range(0, data.shape[1], step):
        part = np.ascontiguousarray(data[:, k:k + step])
        chain.process(part)
        if chain.gated:
            gated += part.shape[1]
            reasons.update(chain.quality.gate_reasons)
    seen = reason in reasons
    advice = "" if seen else (f"the {reason} gate did not fire: check the "
                              f"{'frontal (Fp1/Fp2)' if reason == 'blink' else 'C3/C4 and neighbouring'} electrodes, "
                              f"or the protocol's [inhibits] thresholds")
    return ArtifactTest(instruction, seen, gated / source.sfreq, sorted(reasons), advice)


def run_signal_check(source, protocol=None, seconds: float = 4.0, artifact_tests: bool = False,
                     impedance: bool = True, limits: SignalCheckLimits | None = None, say=None) -> dict:
    """Run the whole check on a source that is not started yet; returns the JSON-ready result.

    Parameters
    ----------
    source : Source
        Opened (e.g. by :func:`neurofeed.live.session.open_source`), not started.
    protocol : Protocol, optional
        The session's protocol: its gates are the ones the artifact tests confirm.
    seconds : float
        Length of the recording the channel measures use.
    artifact_tests : bool
        Ask for blinks and a jaw clench and confirm the gates see them.
    impedance : bool
        Measure lead-off impedance where the board can.
    """
    say = say or (lambda text: print(text, flush=True))
    source.start()
    try:
        acquire(source, 0.5)  # let the amplifier's and the filters' start settle; not measured
        data = acquire(source, seconds)
        imp = None
        if impedance and can_measure_impedance(source):
            say("  measuring impedance (lead-off), one channel at a time ...")
            imp = cyton_impedance_kohm(source, list(source.ch_names))
        channels = measure_channels(data, source.sfreq, source.ch_names, source.range_uv,
                                    getattr(source, "line_hz", 50.0), imp, limits,
                                    ac_coupled=bool(getattr(getattr(source, "config", None), "ac_coupled", False)),
                                    actions=channel_actions(source))
        result = {"source": source.name, "sfreq": source.sfreq, "seconds": seconds,
                  "line_freq": getattr(source, "line_hz", 50.0),
                  "channels": {n: {k: v for k, v in asdict(c).items()} for n, c in channels.items()}}
        if artifact_tests:
            factory = _gated_chain_factory(source, protocol)
            result["blink_test"] = asdict(artifact_test(source, factory, "Blink firmly three times now", "blink",
                                                        5.0, say))
            result["jaw_test"] = asdict(artifact_test(source, factory, "Clench your jaw for two seconds now", "emg",
                                                      5.0, say))
        result["ok"] = all(c.ok for c in channels.values()) and all(
            result[k]["seen"] for k in ("blink_test", "jaw_test") if k in result)
        return result
    finally:
        source.stop()


def _gated_chain_factory(source, protocol):
    """A fresh MuChain with the session's gates (the protocol's, or the demo protocol's)."""
    from ..dsp.chain import MuChain
    from ..dsp.quality import QualityConfig
    from ..protocol.schema import load_protocol

    proto = protocol or load_protocol("demo")
    s, inh = proto.signal, proto.inhibits

    def make():
        refs = s.reference if isinstance(s.reference, (list, tuple)) else [s.reference]
        last = None
        for ref in list(refs) + ["average", "raw"]:
            try:
                return MuChain(source.sfreq, source.ch_names, [t for t in s.targets if t in source.ch_names] or
                               [source.ch_names[0]], ref, tuple(s.band_hz), s.estimator,
                               0.05 if s.delay_s == "choose" else s.delay_s, None,
                               getattr(source, "line_hz", 50.0),
                               QualityConfig(rail_uv=0.98 * source.range_uv, emg_uv=inh.emg_uv,
                                             blink_uv=inh.blink_uv, hold_s=inh.hold_s),
                               bipolar_pairs=s.bipolar, memory_s=s.memory_s)
            except NeurofeedError as err:
                last = err
        raise last

    return make


def print_signal_check(result: dict, stream=None) -> None:
    """The signal check as a table a clinician reads at a glance, with what to do for each failure."""
    stream = stream or sys.stdout
    w = stream.write
    w(f"Signal check: {result['source']} ({result['sfreq']:g} Hz, {result['seconds']:g} s, mains "
      f"{result['line_freq']:g} Hz)\n")
    w(f"  {'channel':<8s} {'offset mV':>10s} {'mains µV':>9s} {'RMS µV':>8s} {'kΩ':>6s} {'contact':>7s}  result\n")
    for name, c in result["channels"].items():
        imp = ("railed" if c["railed"] else "flat" if c["flat"] else "—") if c["impedance_kohm"] is None \
            else f"{c['impedance_kohm']:.0f}"
        off = "—" if c["offset_uv"] is None else f"{c['offset_uv'] / 1000:.1f}"
        flag = "ok" if c["ok"] else f"FAIL  {c['advice']}"
        w(f"  {name:<8s} {off:>10s} {c['line_noise_uv']:9.1f} {c['rms_uv']:8.1f} {imp:>6s} {c.get('contact', ''):>7s}"
          f"  {flag}\n")
    for key, label in (("blink_test", "blink test"), ("jaw_test", "jaw-clench test")):
        if key in result:
            t = result[key]
            w(f"  {label}: {'seen by the gate' if t['seen'] else 'NOT seen'} ({t['gated_s']:.1f} s gated)"
              f"{'' if t['seen'] else '  ' + t['advice']}\n")
    failed = failed_channels(result)
    if failed:
        w(f"  fix the channels marked FAIL before starting ({', '.join(failed)})\n")
    elif result["ok"]:
        w("  all channels ok\n")
    else:
        w("  all channels ok; a gate did not see its test artifact (see above)\n")


def check_html(result: dict) -> str:
    """The check as rich text for the clinician console's first panel (what failed, what to do)."""
    rows = []
    for name, c in result["channels"].items():
        colour = "#27ae60" if c["ok"] else "#c0392b"
        what = "ok" if c["ok"] else c["advice"]
        off = "" if c["offset_uv"] is None else f"offset {c['offset_uv'] / 1000:.1f} mV, "
        rows.append(f"<span style='color:{colour}'>{name}</span>: {off}"
                    f"mains {c['line_noise_uv']:.1f} µV, RMS {c['rms_uv']:.1f} µV"
                    + ("" if c["impedance_kohm"] is None else f", {c['impedance_kohm']:.0f} kΩ") + f" — {what}")
    head = ("<b>Signal check before the session: all channels ok</b>" if not failed_channels(result) else
            "<b style='color:#c0392b'>Signal check before the session: fix the channels marked red</b>")
    return head + "<br>" + "<br>".join(rows)


def signal_check_before_session(source, protocol, seconds: float = 3.0, say=None) -> dict:
    """The check a session runs first (``neurofeed session --check``): channels only, no prompts
    (the blink and jaw tests belong to ``neurofeed check``), on the session's own source before
    its recording starts. Returns the result (see :func:`run_signal_check`)."""
    return run_signal_check(source, protocol, seconds=seconds, artifact_tests=False, impedance=False, say=say)



def failed_channels(result: dict) -> list[str]:
    """The channels a check result marks FAIL, in montage order."""
    return [name for name, c in result["channels"].items() if not c["ok"]]


def confirm_start(result: dict | None, force: bool = False, window: bool = False, stdin=None, say=None,
                  ask_window=None) -> bool:
    """Whether a session may start after its signal check (``neurofeed session``).

    With every channel passing (or no check run) it may. With a channel marked FAIL it starts
    only when the operator says so: ``--force``; else, when the session shows windows, a Qt
    question (default No); else, when ``stdin`` is a terminal, a ``[y/N]`` prompt there. With
    neither (a script, a pipe, a service) there is nobody to ask: the start is refused.
    Nothing is recorded before this returns True.

    Parameters
    ----------
    result : dict or None
        :func:`signal_check_before_session`'s result.
    force : bool
        ``--force``: start without asking (said in one line).
    window : bool
        The session shows windows: ask in a dialog.
    stdin : file, optional
        Where the terminal answer is read (default ``sys.stdin``).
    ask_window : callable, optional
        ``ask_window(text) -> bool``: the question in a window (the command line passes
        :func:`neurofeed.ui.display.ask_start_anyway`; the check itself knows no views).

    Returns
    -------
    bool
        True to start; False when the operator answered no.

    Raises
    ------
    NeurofeedError
        A channel failed, without ``--force``, and there is neither a window nor a terminal to ask.
    """
    say = say or (lambda text: print(text, flush=True))
    failed = failed_channels(result) if result else []
    if not failed:
        return True
    names = ", ".join(failed)
    if force:
        say(f"--force: starting with {names} failing the signal check")
        return True
    question = (f"The signal check failed on {names}. Starting now records and trains on that signal; "
                f"fix the channels marked FAIL first, or mark them bad during the session.")
    if window and ask_window is not None:
        return bool(ask_window(question))
    stdin = stdin if stdin is not None else sys.stdin
    if stdin is None or not stdin.isatty():
        raise NeurofeedError(f"the signal check failed on {names} and there is no terminal to ask: fix the "
                             f"channels marked FAIL, or pass --force to start anyway.")
    sys.stdout.write(f"{question}\nStart anyway? [y/N] ")
    sys.stdout.flush()
    answer = stdin.readline()
    return answer.strip().lower() in ("y", "yes")

