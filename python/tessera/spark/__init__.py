"""tessera on Apache Spark: the same epoch, the same bytes, on a cluster.

``run_epoch(spark, lake, epoch, ...)`` computes an epoch with a ``SparkSession`` and publishes
exactly the files ``tessera epoch run`` would (the test suite compares every byte). The Rust
kernels run inside Spark's Python workers through this package's native module; no row is
handled in Python::

    sources ──mapInArrow: clean + cover (Rust)──▶ visits(bucket, cell, device, …)   [stage 1]
    driver: rejections.parquet, trust (flags, fingerprints, reputation)              [stage 2]
    visits ⋈cogroup⋈ prior coverage, by bucket ──applyInArrow: score (Rust)──▶ points  [stage 3]
    points summed per recipient by Spark (decimal(38,0), ANSI: overflow is an error)
    driver: explain/coverage assembled in bucket order, allocation, merkle, manifest  [stage 4]

A *bucket* is ``cell >> 3·(15 − bucket_res)``: the cell's parent at H3 resolution
``bucket_res``, as an integer that sorts like the cells, so buckets folded in ascending order
are every cell in order. The lake must be on a file system every executor sees (a local path
or NFS; see the README for object stores): workers read the sources from it and write their
parts into a scratch directory inside the run's staging directory.

Requires ``pyspark`` (4.1 or newer) and Java 17 or 21; workers need this package installed in
the Python that ``PYSPARK_PYTHON`` names.
"""

from __future__ import annotations

import itertools as _itertools
import json as _json
import os as _os
import re as _re
from typing import Any, Dict, Optional, Union

from .. import _tessera
from .._tessera import TesseraError

__all__ = ["run_epoch", "DEFAULT_BUCKET_RES", "VISITS", "PRIOR", "POINTS"]

#: Resolution of the bucket cells (res 6: ~36 km² each; a city is tens to hundreds of buckets).
DEFAULT_BUCKET_RES = 6

#: Stage 1's output, one row per (source, cell, device) visit.
VISITS = "bucket long, cell long, device int, first_ms long, last_ms long, fixes long, hdop_centi long"
#: The prior coverage state, one row per cell.
PRIOR = "bucket long, cell long, first_epoch long, last_epoch long, times_covered long"
#: Stage 3's output, one row per (bucket, recipient).
POINTS = "recipient string, points decimal(38,0), cells long, devices array<int>"

PathLike = Union[str, "_os.PathLike[str]"]


def _shift(bucket_res: int) -> int:
    if isinstance(bucket_res, bool) or not isinstance(bucket_res, int) or not 0 <= bucket_res <= 15:
        raise ValueError(f"bucket_res {bucket_res!r} is not an H3 resolution (an int 0..15)")
    return 3 * (15 - bucket_res)


def _check_pool(pool: Optional[int]) -> None:
    if pool is not None and (isinstance(pool, bool) or not isinstance(pool, int)):
        raise TypeError(f"pool must be an int of base units, not {type(pool).__name__}")
    if pool is not None and not 0 <= pool < 10**38:
        raise ValueError(f"pool {pool} is outside 0..10^38-1 (Decimal128(38,0) amounts)")


def _check_partitions(partitions: Optional[int]) -> None:
    if partitions is not None and (isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1):
        raise ValueError(f"partitions {partitions!r} must be an int of at least 1")


def _per_id(native_fn: str, scratch: str, shift: int):
    """A ``mapInArrow`` function calling ``_tessera.<native_fn>(scratch, id, shift)`` for each
    ``id`` of a ``spark.range`` (a source index, a prior row group)."""

    def per_id(batches):
        from tessera import _tessera as native

        fn = getattr(native, native_fn)
        for b in batches:
            for i in b.column("id").to_pylist():
                yield from fn(scratch, i, shift).to_batches()

    return per_id


def _score(scratch: str):
    def score(key, visits, prior):
        from tessera import _tessera as native

        return native.spark_score(scratch, key[0].as_py(), visits, prior)

    return score


def run_epoch(
    spark: Any,
    lake: PathLike,
    epoch: str,
    pool: Optional[int] = None,
    registry: Optional[PathLike] = None,
    policy: Optional[PathLike] = None,
    *,
    replace: bool = False,
    no_prior: bool = False,
    bucket_res: int = DEFAULT_BUCKET_RES,
    partitions: Optional[int] = None,
    timings: Optional[Dict[str, float]] = None,
) -> Dict[str, Any]:
    """Compute an epoch on ``spark`` (a ``SparkSession``) and publish ``epochs/<epoch>/`` in
    ``lake`` — byte for byte what ``tessera epoch run`` writes, whatever the number of
    executors, partitions (``partitions`` of the source and prior scans, default four per core;
    ``spark.sql.shuffle.partitions`` for the shuffles) or ``bucket_res``.

    ``pool`` (an ``int`` of base units) may be left out when the policy has an ``[emission]``
    schedule; ``registry`` defaults to ``<lake>/registry.csv``; ``policy`` is a file (its
    GeoJSON/OSM places are read on the driver). The published-epoch and missing-prior rules of
    ``tessera.run_epoch`` apply (``replace``, ``no_prior``). Sets ``spark.sql.ansi.enabled`` so
    that an overflowing sum fails instead of wrapping (the session's setting is restored after).

    ``timings``, when given, receives each stage's wall seconds (``plan``, ``cover``, ``fold``,
    ``score``, ``finish``: what the benchmark reports; never part of any output).

    Returns the summary (as ``tessera.run_epoch``) with ``unchanged`` and ``engine: "spark"``.
    Raises ``TesseraError`` for bad inputs (also when a worker met them: a corrupt source names
    its file) and when Spark's sums disagree with the scored rows; nothing is published then."""
    _check_pool(pool)
    _check_partitions(partitions)
    import time

    shift = _shift(bucket_res)
    clock = {} if timings is None else timings
    t = [time.perf_counter()]

    def lap(name):
        now = time.perf_counter()
        clock[name] = now - t[0]
        t[0] = now

    ansi = spark.conf.get("spark.sql.ansi.enabled", None)
    spark.conf.set("spark.sql.ansi.enabled", "true")
    sc = spark.sparkContext
    # This run's jobs carry a tag of their own (a thread-local property: other threads' runs in
    # the same session keep theirs), so a failed run can cancel them and wait for their tasks.
    tag = f"tessera-epoch-{_os.getpid()}-{next(_RUNS)}"
    interrupt = sc.getLocalProperty("spark.job.interruptOnCancel")
    sc.addJobTag(tag)
    sc.setInterruptOnCancel(True)
    try:
        return _run(spark, lake, epoch, pool, registry, policy, replace, no_prior, shift, partitions, lap, tag)
    finally:
        sc.removeJobTag(tag)
        sc.setLocalProperty("spark.job.interruptOnCancel", interrupt)  # None: unset, as before
        if ansi is None:
            spark.conf.unset("spark.sql.ansi.enabled")
        else:
            spark.conf.set("spark.sql.ansi.enabled", ansi)


_RUNS = _itertools.count()

#: How long a failed run waits for its cancelled tasks before removing its staging directory.
QUIESCE_SECONDS = 120.0


def _quiesce(sc, tag: str, timeout: float = QUIESCE_SECONDS) -> bool:
    """Cancel the run's jobs and wait until none of their tasks is running.

    When one task fails, Spark fails the job at once while the stage's other tasks may still be
    running; a task that then writes its output (Hadoop creates the parent directories) would
    recreate the staging directory the driver just removed. True when quiet within ``timeout``
    seconds (else the lake's recovery removes the staging directory once it is an hour old)."""
    import time

    sc.cancelJobsWithTag(tag)
    tracker = sc.statusTracker()
    jobs = list(sc._jsc.sc().statusTracker().getJobIdsForTag(tag))
    deadline = time.monotonic() + timeout
    while True:
        busy = False
        for j in jobs:
            info = tracker.getJobInfo(j)
            if info is None:
                continue
            busy = busy or info.status == "RUNNING"
            for s in info.stageIds:
                stage = tracker.getStageInfo(s)
                busy = busy or (stage is not None and stage.numActiveTasks > 0)
        if not busy:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _run(spark, lake, epoch, pool, registry, policy, replace, no_prior, shift, partitions, lap, tag):
    from pyspark.sql import functions as F

    drv = _tessera.StagedDriver(
        _os.fspath(lake),
        epoch,
        pool,
        None if registry is None else _os.fspath(registry),
        None if policy is None else _os.fspath(policy),
        bool(replace),
        bool(no_prior),
    )
    try:
        lap("plan")
        scratch = drv.scratch
        # Sources differ in size: a few tasks per core balance them (the CLI steals work).
        parts = max(1, int(partitions or 4 * spark.sparkContext.defaultParallelism))
        n = drv.sources
        # Stage 1: clean + cover each source on the workers; visits to Parquet in the scratch dir.
        visits_dir = _os.path.join(scratch, "visits")
        (
            spark.range(0, n, 1, numPartitions=max(1, min(n, parts)))
            .mapInArrow(_per_id("spark_cover", scratch, shift), VISITS)
            .write.mode("overwrite")
            .parquet(visits_dir)
        )
        lap("cover")
        # Stage 2 on the driver.
        drv.fold_sources()
        lap("fold")
        # Stage 3: each bucket's visits with its prior state, scored on the workers.
        visits = spark.read.schema(VISITS).parquet(visits_dir)
        rgs = _tessera.spark_prior_row_groups(scratch)
        prior = spark.range(0, rgs, 1, numPartitions=max(1, min(rgs, parts))).mapInArrow(
            _per_id("spark_prior", scratch, shift), PRIOR
        )
        points = visits.groupBy("bucket").cogroup(prior.groupBy("bucket")).applyInArrow(_score(scratch), POINTS)
        sums = (
            points.groupBy("recipient")
            .agg(
                F.sum("points").alias("points"),
                F.sum("cells").alias("cells"),
                F.array_sort(F.array_distinct(F.flatten(F.collect_list("devices")))).alias("devices"),
            )
            .collect()
        )
        rows = [(r["recipient"], str(r["points"]), int(r["cells"]), list(r["devices"])) for r in sums]
        lap("score")
        # Stage 4 on the driver: every file, then the epoch published.
        summary = _json.loads(drv.finish(rows))
        lap("finish")
    except BaseException as e:
        _quiesce(spark.sparkContext, tag)
        drv.abort()
        # A worker's TesseraError reaches the driver inside Spark's PythonException (with the
        # worker's traceback): raise it as what it is, with the Rust message.
        m = None if isinstance(e, TesseraError) else _re.search(r"TesseraError: ([^\n]*)", str(e))
        if m:
            raise TesseraError(m.group(1)) from e
        raise
    summary["pool"] = int(summary["pool"])
    summary["allocated"] = int(summary["allocated"])
    for r in summary.get("top", []):
        r["amount"] = int(r["amount"])
    summary["engine"] = "spark"
    return summary
