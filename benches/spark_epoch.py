"""Bench row: one epoch of a scale lake computed by tessera.spark on local[N] and by the CLI, on the
same lake and cores (issue #17). Prints a table and one JSON line: wall seconds of each, Spark's
session start and per-stage split, peak memory of the CLI, of Spark's driver JVM (which hosts the
local executors) and of its Python workers, whether Spark published the CLI's bytes (it runs with
--replace after the CLI, so identical bytes are `unchanged`), and a projection of a 10^10-fix
week on N executors from those figures.

usage: python benches/spark_epoch.py --lake DIR --tessera BIN [--epoch E] [--pool N] [--cores 2]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time


def tree_rss(root_pid):
    """RSS (bytes) of root_pid's descendants: (jvm, python workers)."""
    parent, cmd = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            parent[int(d)] = int(st[st.rindex(")") + 2 :].split()[1])
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd[int(d)] = f.read()
        except (OSError, ValueError):
            continue
    page = os.sysconf("SC_PAGE_SIZE")
    jvm = workers = 0
    for pid in parent:
        p, seen = pid, 0
        while p in parent and p != root_pid and seen < 64:
            p, seen = parent[p], seen + 1
        if p != root_pid or pid == root_pid:
            continue
        try:
            with open(f"/proc/{pid}/statm") as f:
                rss = int(f.read().split()[1]) * page
        except (OSError, ValueError):
            continue
        if b"java" in cmd.get(pid, b""):
            jvm += rss
        else:
            workers += rss
    return jvm, workers


class Peak(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.jvm = self.workers = 0
        self.stop = False

    def run(self):
        me = os.getpid()
        while not self.stop:
            j, w = tree_rss(me)
            self.jvm, self.workers = max(self.jvm, j), max(self.workers, w)
            time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lake", required=True)
    ap.add_argument("--tessera", required=True)
    ap.add_argument("--epoch", default="2026-W47")
    ap.add_argument("--pool", default="1000000000000")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    a = ap.parse_args()
    registry = os.path.join(a.lake, "registry.csv")
    # The default policy, given explicitly: without --policy a published epoch is recomputed
    # under its own (the scale bench's last run leaves policy v1 published).
    policy = os.path.join(a.lake, "places", "default.toml")
    os.makedirs(os.path.dirname(policy), exist_ok=True)
    with open(policy, "w") as f:
        f.write(subprocess.run([a.tessera, "policy"], capture_output=True, text=True, check=True).stdout)

    t0 = time.perf_counter()
    cli = subprocess.run(
        [a.tessera, "epoch", "run", "--lake", a.lake, "--epoch", a.epoch, "--pool", a.pool,
         "--registry", registry, "--policy", policy, "--replace", "--json"],
        capture_output=True, text=True,
    )  # fmt: skip
    cli_s = time.perf_counter() - t0
    if cli.returncode != 0:
        sys.exit(f"CLI run failed: {cli.stderr}")
    cli_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    fixes = json.loads(cli.stdout)["fixes_in"]

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    import tessera.spark as ts

    peak = Peak()
    peak.start()
    t0 = time.perf_counter()
    spark = (
        SparkSession.builder.master(f"local[{a.cores}]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "4g")
        .config("spark.sql.shuffle.partitions", str(2 * a.cores))
        .getOrCreate()
    )
    start_s = time.perf_counter() - t0
    timings = {}
    t0 = time.perf_counter()
    s = ts.run_epoch(spark, a.lake, a.epoch, int(a.pool), registry=registry, policy=policy, replace=True, timings=timings)
    spark_s = time.perf_counter() - t0
    spark.stop()
    peak.stop = True
    peak.join()

    # Projection: the workers' stages (cover, score) spread over executors; the driver's (plan,
    # fold, finish) stay serial, as measured here, scaled by fixes.
    scale = 1e10 / fixes
    parallel = (timings["cover"] + timings["score"]) * a.cores  # core-seconds
    serial = timings["plan"] + timings["fold"] + timings["finish"]
    proj = {
        f"{n}x{a.cores}": round(scale * (serial + parallel / (n * a.cores)) / 60, 1) for n in (8, 32, 128)
    }
    row = {
        "bench": "spark_epoch",
        "fixes": fixes,
        "cores": a.cores,
        "cli_s": round(cli_s, 2),
        "cli_peak_gib": round(cli_rss / 2**30, 2),
        "spark_session_s": round(start_s, 2),
        "spark_s": round(spark_s, 2),
        "ratio_spark_over_cli": round(spark_s / cli_s, 2),
        "stages_s": {k: round(v, 2) for k, v in timings.items()},
        "driver_jvm_peak_gib": round(peak.jvm / 2**30, 2),
        "python_workers_peak_gib": round(peak.workers / 2**30, 2),
        "same_bytes_as_cli": bool(s["unchanged"]),
        "projected_1e10_minutes_on_executors_x_cores": proj,
    }
    print(f"{'fixes':>10} {'CLI s':>7} {'Spark s':>8} {'ratio':>6} {'session s':>9}  stages (s)")
    st = " ".join(f"{k}={v:.1f}" for k, v in timings.items())
    print(f"{fixes:>10} {cli_s:>7.2f} {spark_s:>8.2f} {spark_s / cli_s:>6.2f} {start_s:>9.2f}  {st}")
    print(
        f"peak: CLI {row['cli_peak_gib']} GiB; Spark driver JVM {row['driver_jvm_peak_gib']} GiB, "
        f"Python workers {row['python_workers_peak_gib']} GiB; same bytes: {row['same_bytes_as_cli']}"
    )
    print(json.dumps(row))
    if not s["unchanged"]:
        sys.exit("Spark's epoch differs from the CLI's")


if __name__ == "__main__":
    main()
