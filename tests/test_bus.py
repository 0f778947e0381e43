"""The bus: lossless subscribers see every batch; display feeds are bounded and count gaps."""

from __future__ import annotations

import threading

import polars as pl

from islandflow_tui.engine.bus import Bus


def frame(start: int, n: int) -> pl.DataFrame:
    return pl.DataFrame({"seq": list(range(start, start + n))})


def test_lossless_gets_everything_in_order():
    bus = Bus()
    seen: list[int] = []
    bus.subscribe_lossless(["s"], lambda _s, df: seen.extend(df["seq"].to_list()))
    for i in range(0, 1000, 100):
        bus.publish("s", frame(i, 100))
    assert seen == list(range(1000))


def test_display_keeps_newest_and_counts_gap():
    bus = Bus()
    feed = bus.subscribe_display(["s"], max_rows=250)
    for i in range(0, 1000, 100):
        bus.publish("s", frame(i, 100))
    delta = feed.drain()["s"]
    assert delta.frame["seq"].to_list() == list(range(750, 1000))
    assert delta.gap == 750
    assert feed.total_gap == 750
    assert feed.drain() == {}


def test_display_single_batch_larger_than_limit():
    bus = Bus()
    feed = bus.subscribe_display(["s"], max_rows=10)
    bus.publish("s", frame(0, 25))
    delta = feed.drain()["s"]
    assert delta.frame["seq"].to_list() == list(range(15, 25))
    assert delta.gap == 15


def test_display_memory_bounded_without_drain():
    bus = Bus()
    feed = bus.subscribe_display(["s"], max_rows=500)
    for i in range(0, 100_000, 1000):
        bus.publish("s", frame(i, 1000))
    assert feed.pending_rows() == 500


def test_per_stream_limits_and_unsubscribe():
    bus = Bus()
    feed = bus.subscribe_display(["a", "b"], max_rows={"a": 5, "b": 50})
    bus.publish("a", frame(0, 20))
    bus.publish("b", frame(0, 20))
    out = feed.drain()
    assert (out["a"].frame.height, out["b"].frame.height) == (5, 20)
    bus.unsubscribe_display(feed)
    bus.publish("a", frame(0, 20))
    assert feed.drain() == {}


def test_concurrent_push_and_drain_lose_nothing_but_the_counted_gap():
    bus = Bus()
    feed = bus.subscribe_display(["s"], max_rows=300)
    got: list[int] = []
    gap = 0
    done = threading.Event()

    def producer() -> None:
        for i in range(0, 50_000, 50):
            bus.publish("s", frame(i, 50))
        done.set()

    t = threading.Thread(target=producer)
    t.start()
    while not done.is_set() or feed.pending_rows():
        for delta in feed.drain().values():
            got.extend(delta.frame["seq"].to_list())
            gap += delta.gap
    t.join()
    assert len(got) + gap == 50_000
    assert got == sorted(got) and len(set(got)) == len(got)


def test_display_drain_of_some_streams_and_push_hook():
    bus = Bus()
    feed = bus.subscribe_display(["a", "b"], max_rows=100)
    heard: list[str] = []
    feed.on_push = heard.append
    bus.publish("a", frame(0, 3))
    bus.publish("b", frame(0, 2))
    assert heard == ["a", "b"]
    assert list(feed.drain(["b"])) == ["b"]  # "a" stays buffered
    assert feed.drain()["a"].frame["seq"].to_list() == [0, 1, 2]
