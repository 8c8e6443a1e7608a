"""One BLAS/OpenMP thread for training and fine-tuning: the same rows give the same model on any machine.

More threads split BLAS sums differently; the last bits of the weights then differ with the core count,
and on a flat F1 curve that is enough to move an out-of-fold threshold.  On a busy machine, threads that
compete for the cores also make scipy's L-BFGS several times slower than one thread.
"""
from __future__ import annotations

import importlib.util


def one_blas_thread():
    """A context in which scipy (and scikit-learn, when installed) compute on one BLAS/OpenMP thread."""
    # Load every library that brings its own BLAS first: the limit reaches only those already loaded.
    import scipy.linalg  # noqa: F401
    import scipy.optimize  # noqa: F401
    from threadpoolctl import threadpool_limits

    if importlib.util.find_spec("sklearn") is not None:  # the train extra
        import sklearn.linear_model  # noqa: F401
    return threadpool_limits(limits=1)
