"""The export streams: it never holds more than one block of patients' rows, and its memory does not grow with
the cohort. No timings: the checks count rows per read and per write, and compare traced peaks."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine

import research.export as rx
from research.cohort import CohortDefinition, select_cohort
from tests.research.conftest import TEST_KEY

BLOCK = 7


def test_every_read_and_write_holds_at_most_one_block_of_patients(
    shared: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    reads: list[pd.DataFrame] = []
    writes: list[tuple[str, pd.DataFrame]] = []
    frame, write = rx._frame, rx._TableWriter.write

    def spy_frame(conn, query):
        df = frame(conn, query)
        reads.append(df)
        return df

    def spy_write(self, df):
        writes.append((self.path.stem, df))
        return write(self, df)

    monkeypatch.setattr(rx, "_frame", spy_frame)
    monkeypatch.setattr(rx._TableWriter, "write", spy_write)
    monkeypatch.setattr(rx, "ROW_GROUP_ROWS", 500)  # the Parquet buffer is bounded by a row group
    summary = rx.export_bundle(
        shared, tmp_path / "b", key=TEST_KEY, fmt="parquet", k=1, block_patients=BLOCK, user="t"
    )

    patients = summary.row_counts["patients"]
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [  # the scratch file is gone
        "cohort.json", "data", "data_dictionary.json", "data_dictionary.md", "manifest.json"
    ]  # fmt: skip
    assert patients > 5 * BLOCK  # several blocks
    assert reads and writes
    for df in reads:
        if "patient_id" in df:
            assert df["patient_id"].nunique() <= BLOCK
        else:  # per-episode summaries: the block's episodes only
            assert df["episode_id"].nunique() <= BLOCK * 3
    for table, df in writes:
        assert df["patient_id"].nunique() <= BLOCK, table
    patient_writes = [df for table, df in writes if table == "patients"]
    assert len(patient_writes) == -(-patients // BLOCK)  # one write per block, none for the whole cohort
    assert sum(len(df) for df in patient_writes) == patients


def _traced_peak(engine: Engine, out: Path, definition: CohortDefinition) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        rx.export_bundle(engine, out, definition, key=TEST_KEY, fmt="csv", k=1, block_patients=4, user="t")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_cohort(
    shared: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Peak traced memory (Python objects and NumPy buffers) of exporting a third of the warehouse vs all of
    it, four patients per block: holding every patient's rows would make the larger export ~3x the smaller."""
    # about a third of the patients, chosen by traits unrelated to how many rows each patient has
    small = CohortDefinition(name="quarter", require_baseline=False, sexes=("F",), clinics=("C01",))
    everyone = CohortDefinition(name="all", require_baseline=False)
    n_small, n_all = (len(select_cohort(shared, d)) for d in (small, everyone))
    assert n_all >= 3 * n_small > 0, (n_small, n_all)
    # rows fetched at a time (10,000 in use): below the test's cohorts, as in a real export
    monkeypatch.setattr(rx, "_READ_ROWS", 20)
    # first-use allocations (imports, each definition's compiled queries) out of the way
    for i, d in enumerate((small, everyone)):
        _traced_peak(shared, tmp_path / f"warm-up-{i}", d)
    peak_small = _traced_peak(shared, tmp_path / "small", small)
    peak_all = _traced_peak(shared, tmp_path / "all", everyone)
    assert peak_all < 1.5 * peak_small, (n_small, n_all, peak_small, peak_all)
