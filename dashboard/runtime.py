"""Process settings the dashboard's entry points apply before the numeric libraries load."""

from __future__ import annotations

import os

#: Thread-pool variables of the BLAS builds numpy may use (OpenBLAS on PyPI wheels, MKL, OpenMP).
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


def one_blas_thread_per_worker() -> None:
    """One BLAS thread per server process, unless the environment says otherwise.

    The outcomes page's regressions multiply 100k x 12 matrices: too small to gain from threads, and with several
    workers (gunicorn) or anything else on the machine, OpenBLAS's spinning threads slowed the comparison callback
    from ~450 to ~670 ms median (2 shared CPUs, docs/outcomes.md). Takes effect only before numpy is imported: the
    entry points call it first.
    """
    for name in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
