"""The Polars + polars-h3 peer of tessera's cover + dedupe, on the same Parquet fixes.

Usage: python cover_dedupe.py LAKE/fixes   -> one JSON line {seconds, groups, cells, fixes}

What an analyst would write: read the fixes, latlng_to_cell at resolution 12, group by
(cell, device) with fix count and first/last time, then group by cell. Timed from scan to the
last collected result (interpreter start and imports excluded). Polars uses every core.
"""
import glob
import json
import sys
import time

import polars as pl
import polars_h3 as plh3

files = sorted(glob.glob(f"{sys.argv[1]}/*.parquet"))
t0 = time.perf_counter()
visits = (
    pl.scan_parquet(files)
    .select("device", "time", "lat", "lon")
    .with_columns(cell=plh3.latlng_to_cell("lat", "lon", 12))
    .group_by("cell", "device")
    .agg(n=pl.len(), first=pl.col("time").min(), last=pl.col("time").max())
    .collect()
)
per_cell = visits.group_by("cell").agg(devices=pl.len(), fixes=pl.col("n").sum())
seconds = time.perf_counter() - t0
print(json.dumps({
    "seconds": seconds,
    "groups": visits.height,
    "cells": per_cell.height,
    "fixes": int(per_cell["fixes"].sum()),
    "polars": pl.__version__,
    "threads": pl.thread_pool_size(),
}))
