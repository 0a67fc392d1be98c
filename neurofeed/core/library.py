"""Where protocol files and board configs come from, and which one wins.

The shipped library is the repository's top-level ``protocols/`` and ``configs/`` folders; the
wheel ships them as the data-only packages ``neurofeed._protocols`` and ``neurofeed._configs``
(``pyproject.toml`` maps those names onto the folders, so an editable install reads them in
place) and they are found with :mod:`importlib.resources`.

On top of the shipped files, folder by folder (a later folder wins for a file of the same name):

1. the user folder, ``<user config dir>/neurofeed/protocols`` and ``.../neurofeed/boards``
   (platformdirs: ``~/.config/neurofeed/...`` on Linux), which an upgrade never touches;
2. the folders in ``$NEUROFEED_PROTOCOLS`` / ``$NEUROFEED_CONFIGS`` (one or more, separated by
   ``os.pathsep``), which add to the others rather than replace them.

A protocol file replaces the shipped one of the same name whole. A board config of the same name
as a shipped one only overrides the keys it sets (``line_hz = 60`` alone is a valid file), so the
rest of the shipped config still follows upgrades; see :func:`neurofeed.hardware.boards.list_boards`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = ["KINDS", "LibraryFile", "shipped_dir", "user_dir", "search_dirs", "library_files"]

#: kind -> (package shipping the files, user sub-folder, environment variable adding folders)
KINDS = {
    "protocols": ("neurofeed._protocols", "protocols", "NEUROFEED_PROTOCOLS"),
    "boards": ("neurofeed._configs", "boards", "NEUROFEED_CONFIGS"),
}


@dataclass(frozen=True)
class LibraryFile:
    """One file found in the library: its path, where it came from (``shipped``, ``user`` or the
    environment variable that named its folder) and the shipped file it overlays, if any."""

    path: Path
    origin: str
    overlays: Path | None = None

    @property
    def where(self) -> str:
        """``shipped``, ``user: /path``, ``$NEUROFEED_CONFIGS: /path`` (``over shipped`` when it overlays one)."""
        if self.origin == "shipped":
            return "shipped"
        return f"{self.origin}: {self.path}" + (" (over shipped)" if self.overlays is not None else "")


def _kind(kind: str):
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}") from None


def shipped_dir(kind: str) -> Path:
    """The shipped folder of ``kind`` (``"protocols"`` or ``"boards"``): in the wheel, the package
    data; in an editable install, the repository's ``protocols/`` or ``configs/``."""
    return Path(str(resources.files(_kind(kind)[0])))


def user_dir(kind: str) -> Path:
    """The user's folder of ``kind`` (may not exist): ``~/.config/neurofeed/{protocols,boards}`` on Linux."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("neurofeed")) / _kind(kind)[1]


def search_dirs(kind: str) -> list[tuple[str, Path]]:
    """``(origin, folder)`` pairs, lowest precedence first: shipped, user, then each folder of the
    environment variable in the order given (``$NEUROFEED_CONFIGS=/a:/b``: ``/b`` wins over ``/a``)."""
    _, _, var = _kind(kind)
    dirs = [("shipped", shipped_dir(kind)), ("user", user_dir(kind))]
    dirs += [(f"${var}", Path(p)) for p in os.environ.get(var, "").split(os.pathsep) if p]
    return dirs


def library_files(kind: str) -> dict[str, LibraryFile]:
    """Every ``*.toml`` of ``kind`` by file stem, the winning folder's file for each name, sorted by name."""
    found: dict[str, LibraryFile] = {}
    shipped: dict[str, Path] = {}
    for origin, folder in search_dirs(kind):
        if not folder.is_dir():
            continue
        for f in sorted(folder.glob("*.toml")):
            if origin == "shipped":
                shipped[f.stem] = f
            found[f.stem] = LibraryFile(f, origin, shipped.get(f.stem) if origin != "shipped" else None)
    return {k: found[k] for k in sorted(found)}
