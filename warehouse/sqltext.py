"""Dates and timestamps as the text SQLAlchemy stores on SQLite.

The ETL hands values to the drivers itself (multi-row INSERTs on SQLite, COPY on PostgreSQL), not through
SQLAlchemy's per-value processing, so it writes SQLAlchemy's storage format itself: on SQLite, where dates are
text, a value the loader wrote then compares equal to the same value written or bound by SQLAlchemy, and
PostgreSQL's COPY parses the same text. One function for the staging (etl/validate.py) and the marts
(etl/summary.py), so both always write the same text.
"""

from __future__ import annotations

import numpy as np


def timestamp_text(values: np.ndarray, *, day: bool = False) -> np.ndarray:
    """'2025-01-31 08:00:00.000000' per value (with `day`: '2025-01-31', the time dropped), as an object array of
    str; None for NaT.

    Each distinct value is formatted once, by numpy: a file's or a block's timestamps repeat (one per measure at a
    visit, a few hundred days for 10,000 episodes), and pandas' strftime cost ~2 µs a value. numpy writes a 'T'
    between date and time; it is swapped for a space through a character view of the text array, instead of by
    np.char.replace, which cost more than the formatting (that is kept for years of other than four digits).
    """
    arr = np.asarray(values, dtype="datetime64[us]")
    if day:
        arr = arr.astype("datetime64[D]")
    if not len(arr):
        return np.zeros(0, dtype=object)
    distinct, inverse = np.unique(arr, return_inverse=True)
    text = np.datetime_as_string(distinct, unit="D" if day else "us")
    if not day:
        chars = text.view(np.uint32).reshape(len(text), text.dtype.itemsize // 4)
        usual = chars[:, 10] == ord("T")
        chars[usual, 10] = ord(" ")
        other = ~usual & ~np.isnat(distinct)
        if other.any():
            text[other] = np.char.replace(text[other], "T", " ")
    out = text.astype(object)[inverse.reshape(-1)]
    out[np.isnat(arr)] = None
    return out
