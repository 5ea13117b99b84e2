"""Read-ahead: parse and validate the next chunk in a worker thread while the database merges this one.

The two halves use different cores for much of the time: pandas/numpy and SQLite both release the GIL in their
inner loops. Memory stays bounded by `ahead` items: the worker starts on an item only while fewer than `ahead`
items it built are still waiting to be taken.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()
#: How often a blocked worker checks whether the consumer has gone away (seconds).
_POLL = 0.1


def read_ahead(items: Iterable[T], ahead: int = 1) -> Iterator[T]:
    """Yield `items`, each built in a worker thread while the consumer works on the one before.

    With `ahead=1` the worker builds item k+1 while the consumer holds item k, then waits until the consumer takes
    it: two items in memory at most (the one being used, the one being built). Larger values let the worker run
    further ahead of a consumer whose pace varies, at one more item in memory each.
    """
    if ahead < 1:
        raise ValueError("ahead must be at least 1")
    q: queue.Queue = queue.Queue()
    slots = threading.Semaphore(ahead)  # one per item built and not yet taken
    stop = threading.Event()

    def take_slot() -> bool:
        while not stop.is_set():
            if slots.acquire(timeout=_POLL):
                return True
        return False

    def work() -> None:
        try:
            it = iter(items)
            while take_slot():
                try:
                    item = next(it)
                except StopIteration:
                    q.put(_DONE)
                    return
                q.put(item)
        except BaseException as exc:  # handed to the consumer, raised there
            q.put(exc)

    worker = threading.Thread(target=work, name="etl-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            slots.release()
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)
