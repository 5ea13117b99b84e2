"""Benchmarks (`make bench`; see bench/README.md). Not tests: they print figures, they do not assert.

The dashboard's entry points run one BLAS thread per server process (dashboard/runtime.py); the benchmarks call the
same callbacks in-process, so they apply the same setting before numpy loads.
"""

from dashboard.runtime import one_blas_thread_per_worker

one_blas_thread_per_worker()
