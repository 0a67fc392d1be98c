"""Which protocol fits which board and montage, and the reference it will use there.

Used by ``neurofeed protocols check --board B [--montage M]`` and ``neurofeed montages`` (no device
is opened: the channel names come from the board configs and BrainFlow's board descriptions), and
by the session before it starts, so that a mismatch ends in one line saying which montage or
board would work and which electrode to place where. The advice never renames an electrode.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.errors import NeurofeedError, ProtocolError
from ..dsp.spatial import as_preferences, reference_unsupported
from ..protocol.schema import Protocol
from .boards import DEFAULT_MONTAGE, BoardConfig, get_board, list_boards

__all__ = ["Fit", "fit_protocol", "fitting_montages", "advice", "placement", "require_fit", "montage_table",
           "plot_montage"]


@dataclass
class Fit:
    """How a protocol fits one montage of one board.

    Attributes
    ----------
    reference_used : str or None
        The reference the session will use (None when the protocol does not fit).
    skipped : list of (str, str)
        Preferences passed over before ``reference_used``, with the reason.
    error : str or None
        Why the protocol does not fit (one clause), None when it fits.
    """

    protocol: Protocol
    board: str
    montage: str
    channels: list[str]
    reference_used: str | None = None
    skipped: list = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def where(self) -> str:
        what = "default montage" if self.montage == DEFAULT_MONTAGE else f"montage {self.montage}"
        return f"{self.board} ({what})"

    def line(self) -> str:
        """One line: ``demo on cyton (default montage): reference average (laplacian: ...)``."""
        head = f"{self.protocol.name} on {self.where}"
        if not self.ok:
            return f"{head}: {self.error}"
        why = "; ".join(f"{r}: {reason}" for r, reason in self.skipped)
        return f"{head}: reference {self.reference_used}" + (f" ({why})" if why else "")


def fit_protocol(protocol: Protocol, board: BoardConfig, montage: str | None = None) -> Fit:
    """Check ``protocol``'s targets and reference against ``board``'s ``montage`` (no device opened)."""
    spec = board.montage_spec(montage)
    fit = Fit(protocol, board.name, spec.name, list(spec.channels))
    s = protocol.signal
    missing = [t for t in s.targets if t not in spec.channels]
    if missing:
        fit.error = f"[signal] targets need {', '.join(missing)}, which it lacks ({', '.join(spec.channels)})"
        return fit
    prefs = as_preferences(s.reference)
    for ref in prefs:
        why = reference_unsupported(spec.channels, s.targets, ref, s.bipolar)
        if why is None:
            fit.reference_used = ref
            return fit
        fit.skipped.append((ref, why))
    fit.error = (f"no reference in [{', '.join(prefs)}] fits: "
                 + "; ".join(f"{r}: {why}" for r, why in fit.skipped))
    return fit


def fitting_montages(protocol: Protocol, boards=None) -> list[Fit]:
    """Every (board, montage) where ``protocol`` fits, over ``boards`` (default: all configs)."""
    boards = list_boards() if boards is None else boards
    return [f for b in boards for m in b.montage_names() if (f := fit_protocol(protocol, b, m)).ok]


def placement(board: BoardConfig, montage: str, current: list[str] | None = None) -> str:
    """Where to put the electrodes for ``montage``: its sites in row order and, compared with the
    ``current`` sites, the ones to add (those on BrainFlow's other_channels rows go on the AUX input)."""
    spec = board.montage_spec(montage)
    n_eeg = len(spec.channels) - spec.other_rows
    new = [(i, c) for i, c in enumerate(spec.channels) if c not in set(current or ())]
    where = [f"{c} ({'AUX input' if i >= n_eeg else f'row {i + 1}'})" for i, c in new]
    text = f"electrodes in row order {' '.join(spec.channels)}"
    return text + (f"; put an electrode at {', '.join(where)}" if current is not None and where else "")


def advice(protocol: Protocol, board: BoardConfig, montage: str | None = None) -> str:
    """What would work instead: another montage of ``board`` (and where to place the electrodes),
    else the hardware boards with a montage that fits. Never a renaming of an electrode."""
    current = board.montage(montage)
    same = [f for f in fitting_montages(protocol, [board]) if f.montage != (montage or board.selected_montage)]
    if same:
        f = same[0]
        return f"use --montage {f.montage} ({placement(board, f.montage, current)}; reference {f.reference_used})"
    others = {}
    for f in fitting_montages(protocol, [b for b in list_boards() if b.is_hardware]):
        others.setdefault(f.board, []).append(f.montage)
    where = "; ".join(f"{b}: {', '.join(ms)}" for b, ms in others.items())
    targets = ", ".join(protocol.signal.targets)
    if not where:
        return f"no board config has a montage with {targets} and a reference from {protocol.signal.reference}"
    return (f"no montage of {board.name} has {targets} with a usable reference; montages that fit "
            f"(`neurofeed montages`): {where}")


def check_declared_montages(protocol: Protocol) -> None:
    """``[signal] montage`` of a protocol: each key a board config, each value one of its montages;
    a one-line :class:`ProtocolError` otherwise. (Where the protocol meets the board configs: the
    protocol parser knows no boards.)"""
    src = protocol.path or protocol.name
    for board, name in protocol.signal.montage.items():
        try:
            cfg = get_board(board)
        except NeurofeedError as err:
            raise ProtocolError(f"{src}: [signal] montage names board {board!r}: {err}") from None
        if name not in cfg.montage_names():
            raise ProtocolError(f"{src}: [signal] montage asks {board} for montage {name!r}; {board} has "
                                f"{', '.join(cfg.montage_names())} (see `neurofeed montages`).")


def protocol_montage(protocol: Protocol, board: BoardConfig, montage: str | None = None) -> tuple[str | None, str]:
    """The montage to open ``board`` with: ``montage`` (the command line's) if given, else the one
    the protocol asks for on this board (``[signal] montage``), else None (BrainFlow's default);
    and a line saying where the montage's added electrodes sit and who asked for them (e.g.
    "AUX electrode at C3 (as the protocol asks)"), empty for the default montage. The electrodes
    keep their sites: a montage names where each one is placed, never renames one."""
    if protocol is not None:
        check_declared_montages(protocol)
    asked = protocol.signal.montage.get(board.name) if protocol is not None else None
    name = montage or asked
    if not name or name == DEFAULT_MONTAGE:
        return name, ""
    spec = board.montage_spec(name)
    default = set(board.montage(DEFAULT_MONTAGE))
    n_eeg = len(spec.channels) - spec.other_rows
    added = [f"{'AUX electrode' if i >= n_eeg else 'electrode'} at {c}"
             for i, c in enumerate(spec.channels) if c not in default]
    who = ("as the protocol asks" if montage is None or montage == asked
           else f"--montage {montage}" + (f"; the protocol asks for {asked}" if asked else ""))
    return name, f"Montage {spec.name}: {', '.join(added) or 'the board electrodes'} ({who})"


def require_fit(protocol: Protocol, board: BoardConfig, montage: str | None = None) -> Fit:
    """:func:`fit_protocol`, or a one-line :class:`ProtocolError` with what would work instead."""
    fit = fit_protocol(protocol, board, montage)
    if not fit.ok:
        raise ProtocolError(f"{protocol.path or protocol.name}: {fit.line()}; {advice(protocol, board, montage)}.")
    return fit


def montage_table(protocols, boards=None) -> str:
    """A Markdown table: board, montage, channels, and the reference the protocols use there
    (``—`` where they do not fit). Protocols that behave alike on every montage share a column."""
    boards = [b for b in list_boards() if b.is_hardware] if boards is None else boards
    combos = [(b, m) for b in boards for m in b.montage_names()]
    groups: dict[tuple, list] = {}
    for p in protocols:
        refs = tuple((f.reference_used if (f := fit_protocol(p, b, m)).ok else "—") for b, m in combos)
        groups.setdefault(refs, []).append(p)
    heads = [ps[0].name if len(ps) == 1 else f"{len(ps)} protocols on {'/'.join(ps[0].signal.targets)}"
             for ps in groups.values()]
    rows = ["| board | montage | channels | " + " | ".join(heads) + " |", "|" + "---|" * (3 + len(groups))]
    for i, (b, m) in enumerate(combos):
        refs = [r[i] for r in groups]
        rows.append(f"| {b.name} | {m} | {' '.join(b.montage(m))} | " + " | ".join(refs) + " |")
    return "\n".join(rows)


def plot_montage(board: BoardConfig, montage: str | None, path) -> None:
    """A placement figure: a 2-D head (MNE's ``standard_1020`` positions) with every 10-10 site in
    grey and the montage's electrodes highlighted and named, saved to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mne

    spec = board.montage_spec(montage)
    # the 10-20/10-10 positions (MNE >= 1.13 names them colin27_1020, formerly standard_1020)
    kind = "colin27_1020" if "colin27_1020" in mne.channels.get_builtin_montages() else "standard_1020"
    std = mne.channels.make_standard_montage(kind)
    # all 10-10 sites that standard_1020 places, plus the montage's own
    from ..core.channels import STANDARD_1010

    used = set(spec.channels)
    # the 10-10 grid, without the low ring (…9/…10, I) unless the montage uses a site there
    names = [n for n in STANDARD_1010 if n in std.ch_names and (n in used or not n.endswith(("9", "10")))
             and n not in ("Iz",)]
    info = mne.create_info(names, 250.0, "eeg")
    info.set_montage(std)
    groups = [[i for i, n in enumerate(names) if n not in used], [i for i, n in enumerate(names) if n in used]]
    fig, ax = plt.subplots(figsize=(4.6, 4.9), dpi=110)
    mne.viz.plot_sensors(info, kind="topomap", ch_groups=groups, axes=ax, show=False, pointsize=14,
                         linewidth=0.5, cmap=matplotlib.colors.ListedColormap(["#c8c8c8", "#d62728"]),
                         show_names=False, sphere="eeglab")
    # names next to the highlighted electrodes, in their row order
    coll = ax.collections[0]
    xy = coll.get_offsets()
    for i, n in enumerate(names):
        if n in used:
            ax.annotate(n, xy[i], xytext=(0, 6), textcoords="offset points", ha="center", fontsize=8,
                        fontweight="bold")
    title = f"{board.name} — {'default (BrainFlow)' if spec.name == DEFAULT_MONTAGE else spec.name}"
    ax.set_title(title, fontsize=10)
    ax.text(0.5, -0.04, " ".join(spec.channels), transform=ax.transAxes, ha="center", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
