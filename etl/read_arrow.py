"""Arrow's CSV parser for the regular prefix of a plain file: the same frames and line numbers as the pandas reader
(etl/read.py) at about half its cost, and with the GIL released while it parses.

Used only where the two cannot differ: UTF-8, a one-character delimiter, no rows skipped before the header and no
quote after it (so no quoted cells and no cell spanning lines: line numbers are row numbers). The first row that is
not plain (a blank line, too few or too many fields, bytes that are not UTF-8) stops it; the rows not yet handed
out are read again by the pandas reader from that line on, which then keeps its own behaviour for the rest of the
file (rejects, file-level errors). tests/etl/test_read_arrow.py compares the two readers on irregular files.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from etl.mapping import Mapping

#: Bytes Arrow parses at a time; chunks are cut to the loader's row count from these blocks.
BLOCK_BYTES = 1 << 20


def applies(mapping: Mapping, quoted: bool) -> bool:
    """Whether the Arrow reader may start on a file read with this mapping (see the module docstring)."""
    try:
        encoding = codecs.lookup(mapping.encoding).name
    except LookupError:
        return False
    return (
        not quoted
        and encoding in ("utf-8", "utf-8-sig")
        and len(mapping.delimiter) == 1
        and mapping.delimiter not in '\r\n"'
        and mapping.skip_rows == 0
    )


class ArrowPrefix:
    """Iterate for (raw frame, source line numbers) of the plain prefix; then `complete` says whether it reached the
    end of the file, and `next_line` is the first line it did not hand out."""

    def __init__(self, path: Path, n_columns: int, delimiter: str, chunk_rows: int, first_line: int) -> None:
        self.path, self.n_columns, self.delimiter, self.chunk_rows = path, n_columns, delimiter, chunk_rows
        self.next_line = first_line
        self.complete = False
        self._rows = 0

    def __iter__(self) -> Iterator[tuple[pd.DataFrame, pd.Series]]:
        names = [f"c{i}" for i in range(self.n_columns)]
        try:
            reader = pacsv.open_csv(
                self.path,
                read_options=pacsv.ReadOptions(
                    use_threads=False, block_size=BLOCK_BYTES, skip_rows=1, column_names=names
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=self.delimiter, ignore_empty_lines=False, invalid_row_handler=_stop
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
            pending: list[pa.RecordBatch] = []
            n_pending = 0
            for batch in reader:
                pending.append(batch)
                n_pending += batch.num_rows
                while n_pending >= self.chunk_rows:
                    table = pa.Table.from_batches(pending)
                    yield self._frame(table.slice(0, self.chunk_rows))
                    pending = table.slice(self.chunk_rows).to_batches()
                    n_pending -= self.chunk_rows
        except (pa.ArrowException, UnicodeDecodeError):
            return  # the rows from next_line on are the pandas reader's
        if n_pending:
            yield self._frame(pa.Table.from_batches(pending))
        self.complete = True

    def _frame(self, table: pa.Table) -> tuple[pd.DataFrame, pd.Series]:
        raw = table.to_pandas()
        raw.index = pd.RangeIndex(
            self._rows, self._rows + len(raw)
        )  # as the pandas reader numbers its chunks
        lines = pd.Series(self.next_line + np.arange(len(raw)), index=raw.index, dtype="int64")
        self._rows += len(raw)
        self.next_line += len(raw)
        return raw, lines


def _stop(_row: object) -> str:
    """Any row that is not plain ends the prefix (Arrow raises, the pandas reader takes over)."""
    return "error"
