"""Signal processing: numba kernels, filter design, spatial filters, estimators, quality."""
