"""Channel names: normalisation to 10-10 names and sensorimotor neighbourhoods."""

from __future__ import annotations

import re

# The 10-10 system's names in their conventional spelling (MNE's standard_1005 subset).
_ROWS = {
    "Fp": ["1", "z", "2"],
    "AF": ["9", "7", "5", "3", "1", "z", "2", "4", "6", "8", "10"],
    "F": ["9", "7", "5", "3", "1", "z", "2", "4", "6", "8", "10"],
    "FT": ["9", "7", "8", "10"],
    "FC": ["5", "3", "1", "z", "2", "4", "6"],
    "T": ["9", "7", "8", "10", "3", "4", "5", "6"],
    "C": ["5", "3", "1", "z", "2", "4", "6"],
    "TP": ["9", "7", "8", "10"],
    "CP": ["5", "3", "1", "z", "2", "4", "6"],
    "P": ["9", "7", "5", "3", "1", "z", "2", "4", "6", "8", "10"],
    "PO": ["9", "7", "5", "3", "1", "z", "2", "4", "6", "8", "10"],
    "O": ["1", "z", "2"],
    "I": ["z"],
}
STANDARD_1010 = [row + pos for row, positions in _ROWS.items() for pos in positions]
_BY_UPPER = {name.upper(): name for name in STANDARD_1010}

# Small Laplacian neighbourhoods (nearest ring first, then the next ring as a fallback),
# after Hjorth (1975) and the montage used in mu-suppression studies.
LAPLACIAN_NEIGHBOURS = {
    "C3": (("FC3", "C5", "C1", "CP3"), ("F3", "T7", "Cz", "P3")),
    "C4": (("FC4", "C6", "C2", "CP4"), ("F4", "T8", "Cz", "P4")),
    "Cz": (("FCz", "C1", "C2", "CPz"), ("Fz", "C3", "C4", "Pz")),
    "C1": (("FC1", "C3", "Cz", "CP1"), ()),
    "C2": (("FC2", "Cz", "C4", "CP2"), ()),
    "C5": (("FC5", "T7", "C3", "CP5"), ()),
    "C6": (("FC6", "C4", "T8", "CP6"), ()),
}
# Default bipolar partners per target, in order of preference, used when a protocol asks for
# reference = "bipolar" without naming a partner. A bipolar derivation measures the local
# gradient, so the partner is a NEAR neighbour over the same strip (2–4 cm), never a homologous
# site (C3–C4 would make both targets the same signal) or a far one (Fp1: blinks, O1: alpha).
# Anterior first: the 10-Hz mu generator lies in the postcentral hand area (Salmelin & Hari 1994),
# so FC3 (premotor) carries less of it than CP3 and C3−FC3 keeps more mu; FC3/CP3 straddle the
# central sulcus like the Graz bipolar derivations (Pfurtscheller et al.: 2.5 cm anterior and
# posterior of C3). Then the lateral/medial neighbours, and Cz last (its own mu, from the
# foot/trunk area, partly cancels). Partners that are themselves targets are skipped.
BIPOLAR_PARTNERS = {
    "C3": ("FC3", "CP3", "C5", "C1", "Cz"),
    "C4": ("FC4", "CP4", "C6", "C2", "Cz"),
    "Cz": ("FCz", "CPz", "C1", "C2"),
    "C1": ("FC1", "CP1"),
    "C2": ("FC2", "CP2"),
    "C5": ("FC5", "CP5"),
    "C6": ("FC6", "CP6"),
}
FRONTAL_BLINK_CHANNELS = ("Fp1", "Fpz", "Fp2", "AF7", "AF8", "AF3", "AF4")
# where a montage has no prefrontal electrodes, blinks are watched on the frontal row
FRONTAL_ROW = ("F7", "F5", "F3", "F1", "Fz", "F2", "F4", "F6", "F8")


def blink_channels(available) -> list[str]:
    """Channels to watch for blinks: prefrontal ones if present, else the frontal row."""
    avail = set(available)
    pre = [c for c in FRONTAL_BLINK_CHANNELS if c in avail]
    return pre or [c for c in FRONTAL_ROW if c in avail]


def normalize_name(name: str) -> str:
    """Return the 10-10 spelling of an EEG channel name.

    Trailing dots and spaces (EDF habit, e.g. ``'C3..'``, ``'Fc3.'``) and an ``EEG`` prefix
    are stripped and the case is normalised (``'FC3'``, ``'Cz'``, ``'Fp1'``). Old names
    T3/T4/T5/T6 are kept as they are. A name outside the 10-10 system comes back stripped.
    """
    stripped = re.sub(r"^EEG[\s_-]+", "", name.strip(), flags=re.IGNORECASE)
    stripped = re.sub(r"-(REF|LE|AVG|A1|A2|M1|M2)$", "", stripped, flags=re.IGNORECASE)
    stripped = stripped.strip(". ")
    return _BY_UPPER.get(stripped.upper(), stripped)


def normalize_names(names) -> list[str]:
    """Normalise a list of channel names (see :func:`normalize_name`)."""
    return [normalize_name(n) for n in names]


def hemisphere(name: str) -> str | None:
    """Side of the head of a 10-10 site: ``"left"`` (odd number), ``"right"`` (even) or ``"midline"`` (z).

    Returns None for a name that is not a 10-10 site (e.g. ``"EEG1"``, ``"AUX"``).
    """
    n = normalize_name(name)
    if n not in _BY_UPPER.values():
        return None
    if n.endswith("z"):
        return "midline"
    digits = re.search(r"(\d+)$", n)
    if digits is None:
        return None
    return "left" if int(digits.group(1)) % 2 else "right"


def bipolar_partner(target: str, available, avoid=()) -> str | None:
    """The first default bipolar partner of ``target`` (see ``BIPOLAR_PARTNERS``) that is in
    ``available`` and not in ``avoid`` (other targets, bad channels); None if there is none."""
    avail, skip = set(available), set(avoid) | {target}
    for partner in BIPOLAR_PARTNERS.get(target, ()):
        if partner in avail and partner not in skip:
            return partner
    return None


def laplacian_neighbours(center: str, available) -> tuple[str, ...]:
    """The neighbours of ``center`` present in ``available`` for a small Laplacian.

    The nearest ring is used if any of it is present, otherwise the next ring.
    Returns an empty tuple if the montage has none.
    """
    rings = LAPLACIAN_NEIGHBOURS.get(center, ((), ()))
    avail = set(available)
    for ring in rings:
        present = tuple(n for n in ring if n in avail and n != center)
        if present:
            return present
    return ()

