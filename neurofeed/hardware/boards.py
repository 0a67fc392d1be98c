"""Board configurations (``configs/*.toml``, overlaid by the user's ``boards`` folder): BrainFlow board id, channel names, ranges,
mains frequency and named montages.

A montage says where each electrode sits: row ``i`` of the board ↔ a 10-10 site. The
``default`` montage is BrainFlow's own channel names for the board (``BoardShim.get_board_descr``,
read without opening a session); ``[montages.NAME]`` tables add recommended placements, e.g. the
Cyton ``mu`` montage with C3/C4 and their neighbours. A montage is a statement about where the
electrodes were placed, never a way to call a mastoid or forehead electrode C3.
"""

from __future__ import annotations

import dataclasses
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..core.channels import STANDARD_1010
from ..core.errors import NeurofeedError, SourceError
from ..core.library import library_files

_KEYS = {"name", "board_id", "description", "range_uv", "line_hz", "channel_names", "master_board", "requires", "sfreq",
         "montages", "fixed_placement", "ac_coupled", "check_advice"}
_MONTAGE_KEYS = {"channels", "description", "other_rows", "board_config"}
LINE_FREQS = (50.0, 60.0)
DEFAULT_MONTAGE = "default"



def board_shim():
    """``brainflow.board_shim`` with its library loaded, without the pkg_resources deprecation
    warning BrainFlow 5.x prints when it loads the library (it would break the CLI's one-line errors)."""
    import warnings

    import brainflow.board_shim

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        brainflow.board_shim.BoardControllerDLL.get_instance()
    return brainflow.board_shim


def resolve_board_id(board_id) -> int:
    """A BrainFlow board id from a ``BoardIds`` name or an integer, with a clear error."""
    BoardIds = board_shim().BoardIds

    if isinstance(board_id, str) and not board_id.lstrip("-").isdigit():
        try:
            return BoardIds[board_id.upper()].value
        except KeyError:
            raise SourceError(f"Unknown BrainFlow board {board_id!r}; use a BoardIds name such as "
                              f"SYNTHETIC_BOARD or CYTON_BOARD, or an integer id.") from None
    value = int(board_id)
    if value not in {b.value for b in BoardIds}:
        raise SourceError(f"Unknown BrainFlow board id {value}; valid ids are listed by "
                          f"brainflow.board_shim.BoardIds (e.g. -1 synthetic, 0 cyton).")
    return value


@dataclass
class Montage:
    """One named montage of a board.

    Attributes
    ----------
    name : str
    channels : list of str
        10-10 site of each row, in row order: first the board's EEG rows, then ``other_rows``
        rows from BrainFlow's ``other_channels`` (e.g. the Muse's AUX electrode).
    description : str
        What it is for and where to place the electrodes.
    other_rows : int
        How many channels (at the end of ``channels``) come from BrainFlow's ``other_channels``.
    board_config : list of str
        Commands the source sends with ``BoardShim.config_board`` after preparing the session
        (e.g. ``"p50"``, which turns on the Muse's AUX channel).
    """

    name: str
    channels: list[str]
    description: str = ""
    other_rows: int = 0
    board_config: list[str] = field(default_factory=list)


@dataclass
class BoardConfig:
    """One board's description from ``configs/<name>.toml`` (and the user's file of that name)."""

    name: str
    board_id: str | int
    description: str = ""
    range_uv: float = 187500.0
    line_hz: float = 50.0
    channel_names: list[str] = field(default_factory=list)
    master_board: str | None = None
    requires: str | None = None
    sfreq: float | None = None
    montages: dict = field(default_factory=dict)  # name -> Montage (the [montages.NAME] tables)
    fixed_placement: bool = False  # the default montage's electrodes are built in (a headband): never renamed
    # True where the amplifier removes the electrodes' DC offset before its ADC (the Muse: a ±1 mV
    # range could not hold tens of mV of electrode offset): the signal check reports no offset.
    ac_coupled: bool = False
    # what to do when a channel fails the signal check, per site (e.g. TP9) or "AUX" for the
    # electrode on the AUX input; the default is "re-seat <channel>"
    check_advice: dict = field(default_factory=dict)
    selected_montage: str = DEFAULT_MONTAGE  # the montage a source opened from this config uses
    path: Path | None = None
    origin: str = "shipped"  # where the file comes from (neurofeed.core.library.LibraryFile.where)

    @property
    def is_hardware(self) -> bool:
        """True for a real amplifier (not the simulated, synthetic or playback-file boards)."""
        return self.board_id not in ("simulated", "SYNTHETIC_BOARD") and self.master_board is None \
            and self.requires != "file"

    def montage_names(self) -> list[str]:
        """``["default", *named montages]``."""
        return [DEFAULT_MONTAGE] + [m for m in self.montages if m != DEFAULT_MONTAGE]

    def montage_spec(self, name: str | None = None) -> Montage:
        """The montage ``name`` (default: the selected one, ``"default"`` unless chosen with
        :meth:`with_montage`), or a one-line error listing the board's montages.

        The default montage is BrainFlow's channel names for the board (no device is opened),
        or the config's ``channel_names`` where BrainFlow has none (Ganglion, simulated).
        """
        name = name or self.selected_montage
        if name == DEFAULT_MONTAGE:
            return Montage(DEFAULT_MONTAGE, self._default_channels(), "BrainFlow's channel names for the board")
        if name not in self.montages:
            raise NeurofeedError(f"Board {self.name} has no montage {name!r}; choose one of: "
                                 f"{', '.join(self.montage_names())} (see `neurofeed montages`).")
        return self.montages[name]

    def montage(self, name: str | None = None) -> list[str]:
        """The 10-10 names of montage ``name`` in row order (see :meth:`montage_spec`)."""
        return list(self.montage_spec(name).channels)

    def montage_rows(self, name: str | None = None) -> tuple[list[str], dict, list[str]]:
        """How a BrainFlow source reads montage ``name`` (default: the selected one).

        Returns
        -------
        eeg_names : list of str or None
            The sites of the board's EEG rows, in order (None for the default montage: the
            source keeps BrainFlow's names).
        extra_rows : dict
            Site -> BrainFlow data row for channels read from ``other_channels`` (the Muse AUX).
        board_config : list of str
            ``config_board`` commands that switch those rows on (e.g. ``["p50"]``).
        """
        spec = self.montage_spec(name)
        if spec.name == DEFAULT_MONTAGE:
            return None, {}, []
        n_eeg = len(spec.channels) - spec.other_rows
        extra = {}
        if spec.other_rows:
            other = (self.brainflow_descr() or {}).get("other_channels", [])
            if len(other) < spec.other_rows:
                raise NeurofeedError(f"Montage {spec.name} of {self.name} reads {spec.other_rows} row(s) from "
                                     f"BrainFlow's other_channels; the board has {len(other)}.")
            extra = dict(zip(spec.channels[n_eeg:], (int(r) for r in other)))
        return list(spec.channels[:n_eeg]), extra, list(spec.board_config)

    def with_montage(self, name: str | None) -> "BoardConfig":
        """A copy of this config with montage ``name`` selected (checked; None keeps the default)."""
        spec = self.montage_spec(name or DEFAULT_MONTAGE)
        return dataclasses.replace(self, selected_montage=spec.name)

    def with_line_hz(self, line_hz: float | None) -> "BoardConfig":
        """A copy with the mains frequency ``line_hz`` (50 or 60 Hz; None keeps the config's)."""
        if line_hz is None:
            return self
        return dataclasses.replace(self, line_hz=check_line_freq(line_hz, "--line-freq"))

    def brainflow_descr(self) -> dict | None:
        """BrainFlow's description of the board that produces the data (the master board of a
        playback file), read without opening a session; None for neurofeed's own boards."""
        if self.board_id == "simulated":
            return None
        bid = resolve_board_id(self.master_board or self.board_id)
        try:
            with warnings.catch_warnings():  # BrainFlow's own pkg_resources deprecation notice
                warnings.simplefilter("ignore", UserWarning)
                from brainflow.board_shim import BoardShim

                return BoardShim.get_board_descr(bid)
        except Exception as err:  # BrainFlowError: a board without a description
            raise NeurofeedError(f"Board {self.name}: BrainFlow has no description of board {bid}: {err}") from None

    def _default_channels(self) -> list[str]:
        from ..core.channels import normalize_names

        descr = self.brainflow_descr()
        if descr is None:
            return list(self.channel_names)
        n = len(descr.get("eeg_channels", []))
        names = descr.get("eeg_names", "")
        names = names.split(",") if names else list(self.channel_names)
        if len(names) != n:
            names = [f"EEG{i + 1}" for i in range(n)]
        return normalize_names(names)


def check_line_freq(value, what: str = "line_hz") -> float:
    """``value`` as a mains frequency in Hz (50 or 60), or a one-line error naming ``what``."""
    try:
        hz = float(value)
    except (TypeError, ValueError):
        hz = float("nan")
    if hz not in LINE_FREQS:
        raise NeurofeedError(f"{what} is {value!r}; the mains frequency is 50 (Europe, Africa, most of Asia, "
                             f"Australia) or 60 (the Americas, Korea, Taiwan, part of Japan).")
    return hz


def _load_montages(path, raw) -> dict:
    if not isinstance(raw, dict):
        raise NeurofeedError(f"{path}: [montages] must hold tables [montages.NAME], not {raw!r}.")
    out = {}
    for name, table in raw.items():
        where = f"{path}: [montages.{name}]"
        if name == DEFAULT_MONTAGE:
            raise NeurofeedError(f"{where}: 'default' is BrainFlow's own montage; give yours another name.")
        if not isinstance(table, dict):
            raise NeurofeedError(f"{where} must be a table with channels = [...].")
        unknown = set(table) - _MONTAGE_KEYS
        if unknown:
            raise NeurofeedError(f"{where}: unknown key {sorted(unknown)[0]!r}; allowed: "
                                 f"{', '.join(sorted(_MONTAGE_KEYS))}.")
        chans = table.get("channels")
        if not isinstance(chans, list) or not chans or not all(isinstance(c, str) for c in chans):
            raise NeurofeedError(f"{where}: channels must list the 10-10 site of each row, e.g. [\"Fp1\", \"C3\"].")
        not_1010 = [c for c in chans if c not in STANDARD_1010]
        if not_1010:
            raise NeurofeedError(f"{where}: {not_1010[0]!r} is not a 10-10 site name (e.g. C3, FC3, Cz).")
        if len(set(chans)) != len(chans):
            raise NeurofeedError(f"{where}: a site appears twice in channels ({', '.join(chans)}).")
        other = table.get("other_rows", 0)
        if not isinstance(other, int) or isinstance(other, bool) or not 0 <= other < len(chans):
            raise NeurofeedError(f"{where}: other_rows must be a whole number from 0 to {len(chans) - 1}, "
                                 f"not {other!r}.")
        cmds = table.get("board_config", [])
        if not isinstance(cmds, list) or not all(isinstance(c, str) for c in cmds):
            raise NeurofeedError(f"{where}: board_config must be a list of command strings, e.g. [\"p50\"].")
        out[name] = Montage(name, list(chans), str(table.get("description", "")), other, list(cmds))
    return out


def load_board_config(path: Path, base: Path | None = None) -> BoardConfig:
    """Read and check one board config file; with ``base`` (the shipped file of the same name),
    ``path`` only overrides the keys it sets (a ``[montages.NAME]`` table replaces that montage)."""
    raw = _read_toml(base) if base is not None else {}
    over = _read_toml(path)
    merged = [raw.get("montages", {}), over.get("montages", {})]
    raw.update(over)
    if base is not None and all(isinstance(m, dict) for m in merged):
        raw["montages"] = {**merged[0], **merged[1]}
    unknown = set(raw) - _KEYS
    if unknown:
        raise NeurofeedError(f"{path}: unknown key {sorted(unknown)[0]!r}; allowed: {', '.join(sorted(_KEYS))}.")
    for key in ("name", "board_id"):
        if key not in raw:
            raise NeurofeedError(f"{path}: missing key {key!r}.")
    raw["montages"] = _load_montages(path, raw.get("montages", {}))
    if "line_hz" in raw:
        raw["line_hz"] = check_line_freq(raw["line_hz"], f"{path}: line_hz")
    for key in ("fixed_placement", "ac_coupled"):
        if key in raw and not isinstance(raw[key], bool):
            raise NeurofeedError(f"{path}: {key} must be true or false, not {raw[key]!r}.")
    advice = raw.get("check_advice", {})
    if not isinstance(advice, dict) or not all(isinstance(v, str) for v in advice.values()):
        raise NeurofeedError(f"{path}: check_advice must be a table of site = \"what to do\" lines, e.g. "
                             f"TP9 = \"move the headband\".")
    return BoardConfig(path=Path(path), **raw)


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise NeurofeedError(f"{path}: cannot read board config: {err}") from None


def list_boards() -> list[BoardConfig]:
    """All board configs, sorted by name: the shipped ones with the user's and ``$NEUROFEED_CONFIGS``
    files laid over them file by file (:mod:`neurofeed.core.library`)."""
    boards = []
    for f in library_files("boards").values():
        b = load_board_config(f.path, f.overlays)
        b.origin = f.where
        boards.append(b)
    return sorted(boards, key=lambda c: c.name)


def get_board(name: str) -> BoardConfig:
    """The config named ``name`` (file stem or ``name`` key), or a clear error listing the choices."""
    boards = list_boards()
    for b in boards:
        if name in (b.name, b.path.stem):
            return b
    raise NeurofeedError(f"Unknown board {name!r}; choose one of: {', '.join(b.name for b in boards)} "
                         f"(or --board-id N for any BrainFlow board).")
