"""The loader's read-ahead: order, errors, early exit, and how many items it holds at once (its memory bound)."""

from __future__ import annotations

import threading
import time

import pytest

from etl.pipeline import read_ahead


class Tracked:
    """Items that count how many of them exist at once (built and not yet released by the consumer)."""

    def __init__(self, n: int, pause: float = 0.0) -> None:
        self.n, self.pause = n, pause
        self.alive = 0
        self.most = 0
        self.built = 0
        self.lock = threading.Lock()

    def __iter__(self):
        for i in range(self.n):
            with self.lock:
                self.alive += 1
                self.most = max(self.most, self.alive)
                self.built += 1
            yield i

    def release(self) -> None:
        with self.lock:
            self.alive -= 1


def test_items_arrive_in_order() -> None:
    assert list(read_ahead(iter(range(100)))) == list(range(100))
    assert list(read_ahead(iter(range(100)), ahead=3)) == list(range(100))
    assert list(read_ahead(iter([]))) == []


@pytest.mark.parametrize("ahead", [1, 2])
def test_at_most_ahead_plus_one_items_exist(ahead: int) -> None:
    """The consumer holds one item while the worker builds at most `ahead` more: with a slow consumer the worker
    would otherwise run through the whole file."""
    items = Tracked(30)
    for _ in read_ahead(iter(items), ahead=ahead):
        time.sleep(0.002)  # a slow consumer: the worker is always ahead
        items.release()
    assert items.built == 30
    assert items.most == ahead + 1


def test_worker_error_reaches_the_consumer_after_the_good_items() -> None:
    def items():
        yield 1
        yield 2
        raise ValueError("bad chunk")

    got = []
    with pytest.raises(ValueError, match="bad chunk"):
        for item in read_ahead(items()):
            got.append(item)
    assert got == [1, 2]


def test_consumer_leaving_early_stops_the_worker() -> None:
    items = Tracked(1000)
    gen = read_ahead(iter(items), ahead=1)
    assert next(gen) == 0
    gen.close()  # what a `break` or an exception in the consumer's loop does
    time.sleep(0.3)
    assert items.built <= 3
    assert not any(t.name == "etl-read-ahead" and t.is_alive() for t in threading.enumerate())


def test_ahead_must_be_positive() -> None:
    with pytest.raises(ValueError):
        list(read_ahead(iter([1]), ahead=0))
