"""Keeping the loader's resident memory flat over long files (glibc; no-ops elsewhere).

glibc keeps the pages a process frees, and its threshold for serving a large block by its own mapping (returned to
the OS when freed) rises after the first such block is freed, up to 32 MB: from then on the chunks' numpy and
Arrow buffers (0.2-2 MB each) come from the heaps, which the loader's two threads fragment. The resident size of a
10M-row load then crept up with the file instead of staying flat. Measured at 10M scores after 100k patients:
- `release_freed_memory` (malloc_trim every ~1M rows, after each file and each refresh block): resident before the
  facts 249 -> 213 MB, growth during them +34 -> +18 MB; the refresh's peak 288 -> 282 MB;
- `fix_mmap_threshold` (256 KB, fixed): with the Arrow reader, the peak during the facts 310 -> 278 MB, flat.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

#: mallopt's parameter number for the mmap threshold (glibc malloc.h).
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 256 * 1024


def release_freed_memory() -> None:
    """Hand the heap pages freed so far back to the OS (a few ms)."""
    trim = _libc("malloc_trim")
    if trim is not None:
        trim(0)


def fix_mmap_threshold() -> None:
    """Serve blocks from MMAP_THRESHOLD_BYTES up by their own mappings, whatever was freed before (process-wide;
    the loader calls it once per file, the dashboard never does)."""
    mallopt = _libc("mallopt")
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


@functools.cache
def _libc(name: str) -> Callable[..., int] | None:
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError, TypeError):
        return None
