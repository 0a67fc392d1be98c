"""Spatial filters as weight matrices (raw, common average, small Laplacian, bipolar) and the
choice of the first reference a montage supports from a protocol's ordered preferences."""

from __future__ import annotations

import numpy as np

from ..core.channels import BIPOLAR_PARTNERS, LAPLACIAN_NEIGHBOURS, bipolar_partner, laplacian_neighbours
from ..core.errors import NeurofeedError

REFERENCES = ("raw", "average", "laplacian", "bipolar", "matrix")
# A common average approximates a reference-free signal only when many sites spread over the
# head take part; with fewer, a few channels dominate it (on a Muse, the frontal pair's blinks).
# Six is the smallest montage we accept for it (BrainFlow's Cyton default has 8).
AVERAGE_MIN_CHANNELS = 6

__all__ = ["REFERENCES", "AVERAGE_MIN_CHANNELS", "spatial_weights", "resolve_reference", "explain_reference",
           "reference_unsupported", "as_preferences"]


def as_preferences(references) -> list[str]:
    """A reference or an ordered list of them, as a list (``"average"`` -> ``["average"]``)."""
    if isinstance(references, str):
        return [references]
    refs = list(references)
    if not refs:
        raise NeurofeedError("The reference preference list is empty; name at least one of "
                             f"{', '.join(REFERENCES[:4])}.")
    return refs


def reference_unsupported(ch_names, targets, reference, bipolar_pairs=None, exclude=()) -> str | None:
    """Why the montage cannot give ``reference`` for ``targets`` (one short clause), or None if it can.

    Parameters are as for :func:`spatial_weights`.
    """
    names = list(ch_names)
    usable = [n for n in names if n not in set(exclude)]
    missing = [t for t in targets if t not in names]
    if missing:
        return f"target {', '.join(missing)} not in the montage"
    if reference in ("raw", "matrix"):
        return None
    if reference == "average":
        if len(usable) < AVERAGE_MIN_CHANNELS:
            return (f"only {len(usable)} channels to average (needs >= {AVERAGE_MIN_CHANNELS} spread over the "
                    f"head)")
        return None
    if reference == "laplacian":
        lacking = [t for t in targets if not laplacian_neighbours(t, usable)]
        if lacking:
            t = lacking[0]
            rings = [n for ring in LAPLACIAN_NEIGHBOURS.get(t, ()) for n in ring]
            hint = f", {t} needs one of {', '.join(rings)}" if rings else f", none known for {t}"
            return f"{', '.join(lacking)} {'has' if len(lacking) == 1 else 'have'} no neighbours{hint}"
        return None
    if reference == "bipolar":
        pairs = bipolar_pairs or {}
        for t in targets:
            if t in pairs:
                if pairs[t] not in usable:
                    return f"partner {pairs[t]} of {t} ([signal] bipolar) not in the montage"
            elif bipolar_partner(t, usable, avoid=targets) is None:
                options = BIPOLAR_PARTNERS.get(t, ())
                hint = f", needs one of {', '.join(options)}" if options else ", set [signal] bipolar"
                return f"no partner for {t}{hint}"
        return None
    return f"unknown reference {reference!r} (expected one of {', '.join(REFERENCES)})"


def spatial_weights(ch_names, targets, reference="raw", bipolar_pairs=None, matrix=None,
                    exclude=()) -> np.ndarray:
    """Weights ``W`` (n_targets × n_channels) so that ``W @ x`` is the referenced target signal.

    Parameters
    ----------
    ch_names : list of str
        The montage, in row order.
    targets : list of str
        Output channels (e.g. ``["C3", "C4"]``).
    reference : str
        ``"raw"`` (as recorded), ``"average"`` (common average over ``ch_names`` minus
        ``exclude``; needs at least :data:`AVERAGE_MIN_CHANNELS`), ``"laplacian"`` (target minus the
        mean of its nearest neighbours present in the montage: C3 − mean(FC3, C5, C1, CP3), else
        the next ring C3 − mean(F3, T7, Cz, P3)), ``"bipolar"`` (target minus its partner in
        ``bipolar_pairs``, else its default partner, see ``neurofeed.core.channels.BIPOLAR_PARTNERS``),
        or ``"matrix"`` (``matrix`` given directly).
    bipolar_pairs : dict, optional
        Target name -> name of the channel subtracted from it.
    matrix : array-like, optional
        Explicit weights for ``reference="matrix"``.
    exclude : iterable of str
        Channels the reference must not use (bad channels, EOG, AUX): left out of the average and
        never a Laplacian neighbour or bipolar partner. Targets themselves are always kept.

    Returns
    -------
    weights : ndarray, shape (n_targets, n_channels)
        A new array; rows sum to 0 for average, laplacian and bipolar.
    """
    names = list(ch_names)
    index = {n: i for i, n in enumerate(names)}
    missing = [t for t in targets if t not in index]
    if missing:
        raise NeurofeedError(f"Target channel(s) {', '.join(missing)} not in the montage ({', '.join(names)}).")
    if reference not in REFERENCES:
        raise NeurofeedError(f"Unknown reference {reference!r}; expected one of {', '.join(REFERENCES)}.")
    if reference == "matrix":
        m = np.asarray(matrix, dtype=float)
        if m.shape != (len(targets), len(names)):
            raise NeurofeedError(f"Spatial matrix has shape {m.shape}; expected {(len(targets), len(names))} "
                                 f"(targets × channels).")
        return np.ascontiguousarray(m)
    why = reference_unsupported(names, targets, reference, bipolar_pairs, exclude)
    if why is not None:
        raise NeurofeedError(f"{reference} reference: {why}; montage {', '.join(names)}.")
    usable = [n for n in names if n not in set(exclude)]
    w = np.zeros((len(targets), len(names)))
    for row, t in enumerate(targets):
        w[row, index[t]] = 1.0
        if reference == "average":
            for n in usable:
                w[row, index[n]] -= 1.0 / len(usable)
        elif reference == "laplacian":
            neigh = laplacian_neighbours(t, usable)
            for n in neigh:
                w[row, index[n]] -= 1.0 / len(neigh)
        elif reference == "bipolar":
            partner = (bipolar_pairs or {}).get(t) or bipolar_partner(t, usable, avoid=targets)
            w[row, index[partner]] -= 1.0
    return w


def explain_reference(ch_names, targets, references, bipolar_pairs=None, exclude=()):
    """Like :func:`resolve_reference`, and also why each earlier preference was passed over.

    Returns
    -------
    reference_used : str
    weights : ndarray, shape (n_targets, n_channels)
    skipped : list of (str, str)
        ``(reference, reason)`` for each preference before ``reference_used`` that the montage
        does not support, in order.
    """
    refs = as_preferences(references)
    skipped = []
    for ref in refs:
        why = reference_unsupported(ch_names, targets, ref, bipolar_pairs, exclude)
        if why is None:
            return ref, spatial_weights(ch_names, targets, ref, bipolar_pairs, exclude=exclude), skipped
        skipped.append((ref, why))
    reasons = "; ".join(f"{r}: {why}" for r, why in skipped)
    fix = "use a montage with the targets' neighbours (`neurofeed montages`)"
    if "average" not in refs:
        fix = f"add a fallback such as \"average\" to [signal] reference or {fix}"
    raise NeurofeedError(f"No reference in [{', '.join(refs)}] fits the montage ({', '.join(ch_names)}): {reasons}; "
                         f"{fix}.")


def resolve_reference(ch_names, targets, references, bipolar_pairs=None, exclude=()):
    """The first reference in ``references`` that the montage supports, and its weights.

    Parameters
    ----------
    ch_names : list of str
        The montage, in row order (10-10 names).
    targets : list of str
        Channels whose referenced signal is wanted.
    references : str or sequence of str
        One reference or an ordered list of preferences, e.g. ``["laplacian", "bipolar", "average"]``.
        ``laplacian`` needs a neighbour of every target; ``bipolar`` a partner for every target
        (``bipolar_pairs`` or the default partners); ``average`` at least
        :data:`AVERAGE_MIN_CHANNELS` channels; ``raw`` always fits.
    bipolar_pairs : dict, optional
        Explicit target -> partner; a target named here never falls back to a default partner.
    exclude : iterable of str
        Channels the reference must not use (see :func:`spatial_weights`).

    Returns
    -------
    reference_used : str
    weights : ndarray, shape (n_targets, n_channels)

    Raises
    ------
    NeurofeedError
        One line naming each preference and why the montage cannot give it.
    """
    used, weights, _ = explain_reference(ch_names, targets, references, bipolar_pairs, exclude)
    return used, weights
