"""tessera.spark on real Spark: a local[2] session shared by the tests, and a standalone master and
worker on 127.0.0.1 started with spark-class. Every epoch file Spark publishes must be byte for
byte what `tessera epoch run` publishes, and `tessera epoch verify` must accept it."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tessera

from conftest import run_cli

REQUIRED = bool(os.environ.get("CI") or os.environ.get("TESSERA_REQUIRE_CORPUS"))
if not REQUIRED:
    pytest.importorskip("pyspark")

import tessera.spark as ts  # noqa: E402

EPOCHS = ["2026-W46", "2026-W47"]
POOL = 10**12


@pytest.fixture(scope="session")
def spark():
    """One local[2] session for every Spark test (session start is the slow part)."""
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    s = (
        SparkSession.builder.master("local[2]")
        .appName("tessera-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    yield s
    s.stop()


def files(lake, epoch):
    d = Path(lake) / "epochs" / epoch
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def without_epochs(src, dst):
    """A copy of a lake's sources (and places, registry) without its published epochs."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("epochs"))
    (Path(dst) / "epochs").mkdir()
    return Path(dst)


def assert_same_epoch(cli_lake, spark_lake, epoch, label):
    a, b = files(cli_lake, epoch), files(spark_lake, epoch)
    assert sorted(a) == sorted(b), f"{label} {epoch}: files differ: {sorted(a)} vs {sorted(b)}"
    differ = [n for n in a if a[n] != b[n]]
    assert not differ, f"{label} {epoch}: {differ} differ from the CLI's"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The README demo's lake (places, roads, a bounty, trust on), both epochs run by the CLI."""
    lake = tmp_path_factory.mktemp("spark-demo") / "lake"
    run_cli("demo", "--lake", lake)
    return lake


@pytest.fixture(scope="module")
def simulated(tmp_path_factory, fleet):
    """A simulated fleet ingested, both epochs run by the CLI with the default policy."""
    lake = tmp_path_factory.mktemp("spark-sim") / "lake"
    for dev in sorted(p for p in Path(fleet).iterdir() if p.is_dir()):
        tessera.ingest(lake, dev.name, sorted(dev.iterdir()))
    shutil.copy(Path(fleet) / "registry.csv", lake / "registry.csv")
    for e in EPOCHS:
        tessera.run_epoch(lake, e, POOL)
    return lake


@pytest.mark.parametrize("table", ["fixes", "rejections", "imu"])
def test_an_analyst_reads_the_per_source_tables_with_sparks_default_reader(spark, demo, table):
    """`spark.read.parquet` of the lake's per-source files, with Spark's default (vectorized)
    reader, gives what pyarrow gives: their encodings (dictionaries, DELTA_BINARY_PACKED times and
    lines, PLAIN coordinates) are ones Spark reads. BYTE_STREAM_SPLIT coordinates failed here."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    d = Path(demo) / table
    assert any(d.glob("*.parquet")), f"the demo lake has no {table} files"
    assert spark.conf.get("spark.sql.parquet.enableVectorizedReader", "true") == "true"
    num = "lat" if table != "imu" else "x"
    row = (
        spark.read.parquet(str(d))
        .selectExpr("count(*)", "sum(line)", "min(unix_micros(time))", "max(unix_micros(time))", f"min({num})", f"max({num})")
        .collect()[0]
    )
    t = pads.dataset(d).to_table()
    us = pc.cast(pc.cast(t["time"], pa.timestamp("us", tz="UTC")), pa.int64())
    want = (t.num_rows, pc.sum(t["line"]).as_py(), pc.min(us).as_py(), pc.max(us).as_py(), pc.min(t[num]).as_py(), pc.max(t[num]).as_py())
    assert tuple(row) == want


@pytest.mark.parametrize("table", ["explain", "coverage"])
def test_an_analyst_reads_the_epoch_tables_with_sparks_default_reader(spark, demo, table):
    """An epoch's `explain` and `coverage` in Parquet layout 5 (as layout 2: `cell` UInt64
    DELTA_BINARY_PACKED, times PLAIN; as layout 3, explain's fixed-point columns without
    statistics; as layout 4, those as DECIMAL(18,6) on INT64; and `cell_id` DELTA_BYTE_ARRAY):
    Spark's vectorized reader gives the cells, cell ids and points pyarrow gives."""
    import pyarrow as pa
    import pyarrow.dataset as pads

    files = sorted(Path(demo).glob(f"epochs/*/{table}.parquet"))
    assert files, f"the demo lake has no {table} files"
    assert all('"layout": 5' in (f.parent / "manifest.json").read_text() for f in files)
    row = (
        spark.read.parquet(*map(str, files))
        .selectExpr("count(*)", "sum(cast(cell as decimal(38,0)))", "count(distinct cell_id)")
        .collect()[0]
    )
    t = pads.dataset(files).to_table()
    cells = t["cell"].to_pylist()
    want = (t.num_rows, sum(cells), len(set(t["cell_id"].to_pylist())))
    assert (row[0], int(row[1]), row[2]) == want
    if table == "explain":
        assert t.schema.field("points").type == pa.decimal128(18, 6)
        assert spark.read.parquet(str(files[0])).schema["points"].dataType.simpleString() == "decimal(18,6)"
        # A filter on a column without statistics is pushed down and still answers exactly.
        top = max(t["points"].to_pylist())
        got = spark.read.parquet(*map(str, files)).where(f"points >= {top}").selectExpr("count(*)", "sum(points)").collect()[0]
        want = [p for p in t["points"].to_pylist() if p >= top]
        assert want and (got[0], got[1]) == (len(want), sum(want))


def test_an_analyst_reads_an_epochs_rejections_with_sparks_default_reader(spark, demo):
    """An epoch's `rejections` in Parquet layout 5 (`time` and `line` DELTA_BINARY_PACKED, the
    coordinates PLAIN, the texts in dictionaries): Spark's vectorized reader gives the rows,
    lines, times, texts and coordinates pyarrow gives."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    files = sorted(Path(demo).glob("epochs/*/rejections.parquet"))
    assert files and all('"layout": 5' in (f.parent / "manifest.json").read_text() for f in files)
    row = (
        spark.read.parquet(*map(str, files))
        .selectExpr("count(*)", "sum(line)", "min(unix_micros(time))", "max(unix_micros(time))", "count(distinct detail)", "max(lat)")
        .collect()[0]
    )
    t = pads.dataset(files).to_table()
    assert t.num_rows > 0, "the demo epochs reject some fixes"
    us = pc.cast(pc.cast(t["time"], pa.timestamp("us", tz="UTC")), pa.int64())
    want = (t.num_rows, pc.sum(t["line"]).as_py(), pc.min(us).as_py(), pc.max(us).as_py(), len(set(t["detail"].to_pylist())), pc.max(t["lat"]).as_py())
    assert tuple(row) == want


def test_spark_publishes_the_demo_epochs_byte_for_byte_and_verify_accepts_them(spark, demo, tmp_path):
    lake = without_epochs(demo, tmp_path / "lake")
    policy = lake / "places" / "places.toml"
    for e in EPOCHS:
        s = ts.run_epoch(spark, lake, e, POOL, policy=policy)
        assert s["engine"] == "spark" and s["allocated"] == POOL and not s["unchanged"]
        assert s["bounties"], "the demo's bounty pays"
        assert_same_epoch(demo, lake, e, "demo")
        out = json.loads(run_cli("--json", "epoch", "verify", "--lake", lake, "--epoch", e))
        assert out["ok"], out
    # Published epochs are immutable on Spark too: the same run is a no-op, another pool refused.
    assert ts.run_epoch(spark, lake, EPOCHS[1], POOL, policy=policy)["unchanged"]
    with pytest.raises(tessera.TesseraError, match="published"):
        ts.run_epoch(spark, lake, EPOCHS[1], POOL + 1, policy=policy)
    assert sorted(p.name for p in (lake / "epochs").iterdir()) == EPOCHS, "a staging directory was left"


@pytest.fixture(scope="module")
def spark_w46(spark, simulated, tmp_path_factory):
    """The simulated lake's sources with W46 computed by Spark (checked against the CLI)."""
    lake = without_epochs(simulated, tmp_path_factory.mktemp("spark-w46") / "lake")
    ts.run_epoch(spark, lake, EPOCHS[0], POOL)
    assert_same_epoch(simulated, lake, EPOCHS[0], "W46")
    return lake


@pytest.mark.parametrize("shuffle,bucket_res", [(1, 5), (4, 7), (7, 5)])
def test_spark_bytes_do_not_depend_on_partitions_or_bucket_size(spark, simulated, spark_w46, tmp_path, shuffle, bucket_res):
    # W47: its visits cogrouped with W46's coverage state, trust history from W46's fingerprints.
    lake = tmp_path / "lake"
    shutil.copytree(spark_w46, lake)
    spark.conf.set("spark.sql.shuffle.partitions", str(shuffle))
    try:
        ts.run_epoch(spark, lake, EPOCHS[1], POOL, bucket_res=bucket_res, partitions=shuffle)
        assert_same_epoch(simulated, lake, EPOCHS[1], f"shuffle={shuffle} bucket_res={bucket_res}")
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", "4")


def test_spark_refuses_bad_arguments_before_touching_the_lake(spark, simulated, tmp_path):
    lake = without_epochs(simulated, tmp_path / "lake")
    with pytest.raises(TypeError):
        ts.run_epoch(spark, lake, EPOCHS[0], 1e12)
    for bad in (16, -1, "6", 6.5, True):
        with pytest.raises(ValueError):
            ts.run_epoch(spark, lake, EPOCHS[0], POOL, bucket_res=bad)
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError):
            ts.run_epoch(spark, lake, EPOCHS[0], POOL, partitions=bad)
    for bad in (-5, 10**38):
        with pytest.raises(ValueError):
            ts.run_epoch(spark, lake, EPOCHS[0], bad)
    with pytest.raises(tessera.TesseraError, match="is not a tessera lake"):
        ts.run_epoch(spark, tmp_path / "typo", EPOCHS[0], POOL)
    assert not (tmp_path / "typo").exists(), "a mistyped lake path must not be created"
    with pytest.raises(tessera.TesseraError, match="no pool"):
        ts.run_epoch(spark, lake, EPOCHS[0])
    with pytest.raises(tessera.TesseraError, match="earlier epoch|no outputs|2026-W46"):
        ts.run_epoch(spark, lake, EPOCHS[1], POOL)  # W46 not run yet
    assert list((lake / "epochs").iterdir()) == []


@pytest.mark.parametrize("which,partitions", [(0, None), (0, 10**3), (-1, 10**3), (-1, 2)])
def test_a_corrupt_source_fails_the_run_naming_the_file_and_publishes_nothing(
    spark, simulated, tmp_path, which, partitions
):
    # When one task fails, the stage's other tasks may still be running (one task per source
    # here makes that likely): the run cancels them and waits for them before it removes its
    # staging directory, so none of them writes it back (CI once saw `epochs/.tmp-…` left).
    lake = without_epochs(simulated, tmp_path / "lake")
    victim = sorted((lake / "fixes").glob("*.parquet"))[which]
    victim.write_bytes(victim.read_bytes()[:100])  # cut: no footer
    with pytest.raises(tessera.TesseraError, match=victim.name):
        ts.run_epoch(spark, lake, EPOCHS[0], POOL, partitions=partitions)
    assert list((lake / "epochs").iterdir()) == [], "nothing published, no staging left"
    time.sleep(1)  # a straggler task would write now
    assert list((lake / "epochs").iterdir()) == [], "no staging written back after the run"


def test_two_runs_of_one_epoch_in_one_process_never_share_a_staging_directory(spark, simulated, tmp_path):
    # Threads sharing one session (a notebook, a scheduler): each run stages on its own, so
    # nothing of one run (its scratch directory) is ever published inside the other's epoch.
    import threading

    lake = without_epochs(simulated, tmp_path / "lake")
    out, errors = [], []

    def run():
        try:
            out.append(ts.run_epoch(spark, lake, EPOCHS[0], POOL))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(out) == 2 and not all(s["unchanged"] for s in out)
    assert_same_epoch(simulated, lake, EPOCHS[0], "two threads")
    assert sorted(p.name for p in (lake / "epochs").iterdir()) == [EPOCHS[0]]


def test_the_command_line_refuses_bad_arguments_before_starting_spark():
    for args in (["--pool", "-5"], ["--pool", "1" * 42], ["--bucket-res", "16"], ["--partitions", "0"]):
        r = subprocess.run(
            [sys.executable, "-m", "tessera.spark", "epoch", "run", "--lake", "x", "--epoch", "2026-W46", *args],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr)
        assert "outside" in r.stderr or "not an integer" in r.stderr, (args, r.stderr)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, what, timeout=90):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout} s")


def test_a_standalone_master_and_worker_publish_the_same_bytes(simulated, spark_w46, tmp_path):
    """`python -m tessera.spark` against spark://127.0.0.1: a master and a worker started with
    spark-class (the pip package has no sbin scripts), executors in their own JVM and Python."""
    import pyspark

    home = Path(pyspark.__file__).parent
    env = dict(os.environ, SPARK_HOME=str(home), PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")
    env["SPARK_LOG_DIR"] = env["SPARK_WORKER_DIR"] = str(tmp_path / "spark-work")
    port, ui1, ui2 = free_port(), free_port(), free_port()
    spark_class = str(home / "bin" / "spark-class")
    log = open(tmp_path / "cluster.log", "w")
    master = subprocess.Popen(
        [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
         "--webui-port", str(ui1)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    worker = None
    try:
        wait_for_port(port, master, "the master")
        worker = subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}", "--host", "127.0.0.1",
             "--cores", "2", "--memory", "1g", "--webui-port", str(ui2), "--work-dir", str(tmp_path / "spark-work")],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        lake = tmp_path / "lake"
        shutil.copytree(spark_w46, lake)
        for e in EPOCHS[1:]:
            r = subprocess.run(
                [sys.executable, "-m", "tessera.spark", "epoch", "run", "--lake", str(lake), "--epoch", e,
                 "--pool", str(POOL), "--master", f"spark://127.0.0.1:{port}"],
                env=env, capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            assert r.returncode == 0, r.stderr[-4000:] + (tmp_path / "cluster.log").read_text()[-4000:]
            s = json.loads(r.stdout)
            assert s["engine"] == "spark" and s["allocated"] == str(POOL)
            assert_same_epoch(simulated, lake, e, "standalone")
    finally:
        for p in (worker, master):
            if p is not None:
                p.terminate()
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
        log.close()
