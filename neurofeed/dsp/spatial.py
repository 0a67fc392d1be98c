"""Spatial filters as weight matrices: raw, common average, small Laplacian, bipolar."""

from __future__ import annotations

import numpy as np

from ..channels import laplacian_neighbours
from ..errors import NeurofeedError

REFERENCES = ("raw", "average", "laplacian", "bipolar", "matrix")


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
        ``exclude``), ``"laplacian"`` (target minus the mean of its nearest neighbours present
        in the montage: C3 − mean(FC3, C5, C1, CP3)), ``"bipolar"`` (target minus its partner in
        ``bipolar_pairs``), or ``"matrix"`` (``matrix`` given directly).
    bipolar_pairs : dict, optional
        Target name -> name of the channel subtracted from it.
    matrix : array-like, optional
        Explicit weights for ``reference="matrix"``.
    exclude : iterable of str
        Channels left out of the common average (e.g. EOG, AUX).
    """
    names = list(ch_names)
    index = {n: i for i, n in enumerate(names)}
    missing = [t for t in targets if t not in index]
    if missing:
        raise NeurofeedError(f"Target channel(s) {', '.join(missing)} not in the montage ({', '.join(names)}).")
    w = np.zeros((len(targets), len(names)))
    for row, t in enumerate(targets):
        w[row, index[t]] = 1.0
        if reference == "raw":
            continue
        if reference == "average":
            pool = [i for n, i in index.items() if n not in set(exclude)]
            w[row, pool] -= 1.0 / len(pool)
        elif reference == "laplacian":
            neigh = laplacian_neighbours(t, names)
            if not neigh:
                raise NeurofeedError(
                    f"Laplacian reference for {t}: the montage has none of its neighbours; "
                    f"use reference = 'average' or 'raw'.")
            for n in neigh:
                w[row, index[n]] -= 1.0 / len(neigh)
        elif reference == "bipolar":
            partner = (bipolar_pairs or {}).get(t)
            if partner not in index:
                raise NeurofeedError(
                    f"Bipolar reference for {t}: partner {partner!r} is not in the montage; "
                    f"set bipolar = {{{t} = \"<channel>\"}}.")
            w[row, index[partner]] -= 1.0
        elif reference == "matrix":
            m = np.asarray(matrix, dtype=float)
            if m.shape != w.shape:
                raise NeurofeedError(f"Spatial matrix has shape {m.shape}; expected {w.shape} (targets × channels).")
            return np.ascontiguousarray(m)
        else:
            raise NeurofeedError(f"Unknown reference {reference!r}; expected one of {', '.join(REFERENCES)}.")
    return w
