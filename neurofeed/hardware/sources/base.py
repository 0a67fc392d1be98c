"""The interface every source implements."""

from __future__ import annotations

import time

from ...core.chunk import Chunk
from ...core.errors import SourceError


def rename_channels(names, channel_map: dict | None, source_name: str) -> list[str]:
    """Apply ``--channel-map`` (source channel name -> 10-10 name) to a source's names.

    Raises :class:`SourceError` (one line) for a name the source does not have, listing its
    channels; the same rule for every source (boards, LSL, files, simulated).
    """
    names = list(names)
    if not channel_map:
        return names
    unknown = [k for k in channel_map if k not in names]
    if unknown:
        raise SourceError(f"--channel-map names {', '.join(unknown)}, not on {source_name} "
                          f"(its channels: {', '.join(names)}).")
    renamed = [channel_map.get(n, n) for n in names]
    dup = sorted({n for n in renamed if renamed.count(n) > 1})
    if dup:
        raise SourceError(f"--channel-map gives two channels of {source_name} the name {dup[0]}; "
                          f"each name may appear once.")
    return renamed


class Source:
    """A stream of EEG chunks.

    Attributes
    ----------
    name : str
        What the source is, for logs and sidecars (e.g. ``"synthetic"``, ``"lsl:EEG"``).
    sfreq : float
        Sampling rate in Hz.
    ch_names : list of str
        10-10 channel names, in row order.
    range_uv : float
        Largest magnitude the amplifier can report (µV): railing threshold and recording range.
    dropped_samples : int
        Samples detected as lost (package counter gaps), counted since start; they reach the
        pipeline as gap samples (NaN columns, ``Chunk.gap``).
    line_hz : float
        Mains frequency where the source is used (Hz), from the board config.
    finished : bool
        True when a finite source (a file) has handed over everything.
    poll_s : float
        How long ``read`` naps when nothing is there yet (0.5 ms). 0 makes it busy-poll (yield
        the GIL but never sleep): samples are picked up sooner, at the price of a core.
    """

    name = "source"
    sfreq: float = 0.0
    ch_names: list[str] = []
    range_uv: float = 1000.0
    line_hz: float = 50.0
    dropped_samples = 0
    finished = False
    realtime = True
    poll_s = 0.0005

    def nap(self, seconds: float | None = None) -> None:
        """Wait a little for data: ``seconds`` (at most) or ``poll_s``; a yield when busy-polling."""
        time.sleep(0.0 if self.poll_s == 0 else min(self.poll_s if seconds is None else seconds, 0.002))

    def start(self) -> None:
        """Open the device or stream and start acquisition."""

    def read(self) -> Chunk | None:
        """Return the next chunk, or None if nothing arrived within a short poll (~1 ms)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop acquisition and release the device; safe to call twice."""

    def describe(self) -> dict:
        """What the sidecar records about the source."""
        return {"source": self.name, "sfreq": self.sfreq, "ch_names": list(self.ch_names),
                "range_uv": self.range_uv}

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
