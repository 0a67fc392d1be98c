"""Board configurations (``neurofeed/data/boards/*.toml``): BrainFlow board id, channel names, ranges."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .errors import NeurofeedError

# Board configs are package data (importlib.resources), so installed copies find them too.
CONFIG_DIR = Path(str(resources.files("neurofeed") / "data" / "boards"))
_KEYS = {"name", "board_id", "description", "range_uv", "line_hz", "channel_names", "master_board", "requires", "sfreq"}


@dataclass
class BoardConfig:
    """One board's description from ``data/boards/<name>.toml``."""

    name: str
    board_id: str | int
    description: str = ""
    range_uv: float = 187500.0
    line_hz: float = 50.0
    channel_names: list[str] = field(default_factory=list)
    master_board: str | None = None
    requires: str | None = None
    sfreq: float | None = None
    path: Path | None = None


def config_dir() -> Path:
    """Folder of board configs (the package's ``data/boards``, or ``$NEUROFEED_CONFIGS``)."""
    import os

    return Path(os.environ.get("NEUROFEED_CONFIGS", CONFIG_DIR))


def load_board_config(path: Path) -> BoardConfig:
    """Read and check one board config file."""
    try:
        raw = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise NeurofeedError(f"{path}: cannot read board config: {err}") from None
    unknown = set(raw) - _KEYS
    if unknown:
        raise NeurofeedError(f"{path}: unknown key {sorted(unknown)[0]!r}; allowed: {', '.join(sorted(_KEYS))}.")
    for key in ("name", "board_id"):
        if key not in raw:
            raise NeurofeedError(f"{path}: missing key {key!r}.")
    return BoardConfig(path=Path(path), **raw)


def list_boards() -> list[BoardConfig]:
    """All board configs, sorted by name."""
    return sorted((load_board_config(p) for p in config_dir().glob("*.toml")), key=lambda c: c.name)


def get_board(name: str) -> BoardConfig:
    """The config named ``name`` (file stem or ``name`` key), or a clear error listing the choices."""
    boards = list_boards()
    for b in boards:
        if name in (b.name, b.path.stem):
            return b
    raise NeurofeedError(f"Unknown board {name!r}; choose one of: {', '.join(b.name for b in boards)} "
                         f"(or --board-id N for any BrainFlow board).")
