"""The entry points' process settings (dashboard/runtime.py)."""

from __future__ import annotations

from dashboard.runtime import BLAS_THREAD_VARIABLES, one_blas_thread_per_worker


def test_one_blas_thread_unless_the_environment_says_otherwise(monkeypatch):
    for name in BLAS_THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "4")
    one_blas_thread_per_worker()
    import os

    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    assert os.environ["OMP_NUM_THREADS"] == "1"
    assert os.environ["MKL_NUM_THREADS"] == "4"  # an operator's choice stands
