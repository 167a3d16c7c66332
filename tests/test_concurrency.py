"""Feeds side by side (ucx_spark/concurrency.py): results by feed in the caller's order, the solo
feeds after the others and one at a time, each feed thread in its own fair-scheduler pool with the
caller's local properties, the first failure raised once the running feeds finish, and job tags set
and restored."""

from __future__ import annotations

import threading
import time

import pytest

from ucx_spark.concurrency import job_tag, run_per_feed

FEEDS = ("accounts", "ami", "bills", "payments", "surveys")


def test_results_come_back_by_feed_in_order_and_the_solo_feed_runs_alone_after_the_others(spark) -> None:
    sc = spark.sparkContext
    events: list[tuple[str, str]] = []
    lock = threading.Lock()
    running: set[str] = set()
    overlapped: set[str] = set()

    def work(feed: str) -> tuple[str, str | None, str | None, int]:
        with lock:
            events.append(("start", feed))
            if running:
                overlapped.add(feed)
                overlapped.update(running)
            running.add(feed)
        pool, step = sc.getLocalProperty("spark.scheduler.pool"), sc.getLocalProperty("ucx.step")
        time.sleep(0.3)  # long enough for the shared feeds to overlap
        rows = spark.range(3).count()  # a Spark job from the feed thread
        with lock:
            running.discard(feed)
            events.append(("end", feed))
        return feed.upper(), pool, step, rows

    sc.setLocalProperty("ucx.step", "silver")
    try:
        got = run_per_feed(spark, FEEDS, work, threads=4)
    finally:
        sc.setLocalProperty("ucx.step", None)

    assert list(got) == list(FEEDS)  # the caller's order, whatever order they finished in
    shared = [f for f in FEEDS if f != "ami"]
    for feed in shared:
        # each shared feed in its own pool, with the caller's ucx.step tag carried over
        assert got[feed] == (feed.upper(), f"ucx-{feed}", "silver", 3)
    # the solo feed runs in the caller's thread (no pool of its own), after every other feed ended
    assert got["ami"] == ("AMI", None, "silver", 3)
    assert events.index(("start", "ami")) > max(events.index(("end", f)) for f in shared)
    assert "ami" not in overlapped
    assert len(overlapped) >= 2  # the shared feeds did run side by side
    assert sc.getLocalProperty("spark.scheduler.pool") is None  # the caller's thread is left as it was


def test_one_thread_runs_the_feeds_one_after_the_other_in_order(spark) -> None:
    order: list[str] = []
    got = run_per_feed(spark, FEEDS, lambda feed: order.append(feed) or len(feed), threads=1)
    assert order == ["accounts", "bills", "payments", "surveys", "ami"]  # solo feeds last
    assert got == {f: len(f) for f in FEEDS}


def test_the_first_failure_is_raised_once_the_running_feeds_finish(spark) -> None:
    finished: list[str] = []

    def work(feed: str) -> str:
        if feed == "bills":
            raise ValueError("bills: bad batch")
        time.sleep(0.2)
        finished.append(feed)
        return feed

    with pytest.raises(ValueError, match="bills: bad batch"):
        run_per_feed(spark, ("accounts", "bills", "payments"), work, threads=3, solo=())
    assert sorted(finished) == ["accounts", "payments"]  # the others were not abandoned half way


def test_job_tag_sets_the_property_for_the_block_and_restores_the_one_before(spark) -> None:
    sc = spark.sparkContext
    assert sc.getLocalProperty("ucx.op") is None
    with job_tag(spark, "bills:merge"):
        assert sc.getLocalProperty("ucx.op") == "bills:merge"
        with job_tag(spark, "step:superseded"):
            assert sc.getLocalProperty("ucx.op") == "step:superseded"
        assert sc.getLocalProperty("ucx.op") == "bills:merge"
        with pytest.raises(RuntimeError), job_tag(spark, "inner"):
            raise RuntimeError("a failing block")
        assert sc.getLocalProperty("ucx.op") == "bills:merge"  # restored on failure too
    assert sc.getLocalProperty("ucx.op") is None
    with job_tag(spark, "gold", key="ucx.step"):
        assert sc.getLocalProperty("ucx.step") == "gold"
    assert sc.getLocalProperty("ucx.step") is None
