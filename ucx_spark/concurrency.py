"""Feeds side by side: one driver thread per feed, each in its own fair-scheduler pool.

A small feed's step is a dozen short Spark jobs and Delta commits whose time
is mostly the driver's (planning, the Delta log, py4j round trips), not the
executors'. Submitting several feeds' jobs from threads overlaps that waiting;
Spark runs jobs from different threads concurrently, and with
``spark.scheduler.mode=FAIR`` each feed's pool gets its share of the cores, so
a feed of ten rows is not queued behind the AMI's stages. The local properties
of the calling thread (the ``ucx.step`` tag, job groups) are carried into the
feed threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from pyspark.sql import SparkSession

T = TypeVar("T")

# Metastore registrations and other driver-side bookkeeping shared by the feed threads.
LOCK = threading.RLock()


# Feeds whose batches are large enough to keep every core busy: they run alone, after the
# others (side by side, a small feed's tasks would wait for a core behind their long tasks).
SOLO_FEEDS = ("ami",)


def run_per_feed(
    spark: SparkSession, feeds: Sequence[str], work: Callable[[str], T], *, threads: int,
    solo: Sequence[str] = SOLO_FEEDS,
) -> dict[str, T]:
    """``work(feed)`` for every feed: the feeds not in ``solo`` ``threads`` at a time (1: one
    after the other, in order), then each ``solo`` feed alone; returns the results by feed. The
    first failure is raised once the running feeds finish."""
    shared = [f for f in feeds if f not in solo]
    alone = [f for f in feeds if f in solo]
    if threads <= 1 or len(shared) <= 1:
        out = {feed: work(feed) for feed in shared}
    else:
        out = _side_by_side(spark, shared, work, threads=threads)
    out.update({feed: work(feed) for feed in alone})
    return {feed: out[feed] for feed in feeds}


def _side_by_side(spark: SparkSession, feeds: Sequence[str], work: Callable[[str], T], *, threads: int) -> dict[str, T]:
    from pyspark.util import inheritable_thread_target

    sc = spark.sparkContext

    def in_pool(feed: str) -> T:
        sc.setLocalProperty("spark.scheduler.pool", f"ucx-{feed}")
        try:
            return work(feed)
        finally:
            sc.setLocalProperty("spark.scheduler.pool", None)

    # One wrapper per feed: pyspark's inheritable_thread_target clones the caller's local
    # properties once, when it wraps, and installs that same Java object in every thread the
    # wrapper runs in; one wrapper for all feeds made the feed threads share one Properties, so a
    # feed's pool and ucx.op tag were overwritten by its neighbours' (jobs ran in other feeds'
    # pools and were counted under other feeds' operations; tests/test_concurrency.py caught it).
    with ThreadPoolExecutor(max_workers=min(threads, len(feeds)), thread_name_prefix="ucx-feed") as pool:
        futures = {feed: pool.submit(inheritable_thread_target(spark)(in_pool), feed) for feed in feeds}
        return {feed: futures[feed].result() for feed in feeds}


@contextmanager
def job_tag(spark: SparkSession, value: str, key: str = "ucx.op") -> Iterator[None]:
    """Tag the Spark jobs this thread starts inside the block with ``key=value`` (a local property,
    kept in the event log with each job: `bench/profile_pipeline.py` counts a step's jobs by it)."""
    sc = spark.sparkContext
    before = sc.getLocalProperty(key)
    sc.setLocalProperty(key, value)
    try:
        yield
    finally:
        sc.setLocalProperty(key, before)
