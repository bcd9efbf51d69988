"""The Python API: the same engine as the CLI, Arrow tables in and out, clear errors."""

import bisect
import json
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

import tessera
from conftest import REPO, run_cli, trace_files

SAMPLE = REPO / "data" / "sample"


def test_read_trace_accounts_for_every_line_and_names_rejections():
    fixes, rej, lines, _ = tessera.read_trace(SAMPLE / "car-001" / "2026-W46-trip2.nmea", device="car-001")
    assert isinstance(fixes, pa.Table) and isinstance(rej, pa.Table)
    assert lines["total"] == lines["fix"] + lines["aux"] + lines["ignored"] + lines["blank"] + lines["comment"] + lines["rejected"]
    assert fixes.num_rows > 500
    assert set(fixes.column("device").to_pylist()) == {"car-001"}
    assert fixes.schema.field("time").type == pa.timestamp("ms", tz="UTC")
    # The file ends in a sentence cut by a power loss.
    assert "truncated" in rej.column("reason").to_pylist()
    assert rej.column("source")[0].as_py().endswith("2026-W46-trip2.nmea")


@pytest.mark.parametrize("path", ["car-002/2026-W46-trip1.gps", "car-004/2026-W46-trip1.txt", "car-006/2026-W46-trip1.gpx"])
def test_every_sample_framing_reads(path):
    fixes, _, _, _ = tessera.read_trace(SAMPLE / path, device="d")
    assert fixes.num_rows >= 590


def test_stages_chain_from_fixes_to_amounts_that_sum_to_the_pool():
    fixes, _, _, _ = tessera.read_trace(SAMPLE / "car-008" / "2026-W46-trip1.gps", device="car-008")
    accepted, rejected = tessera.clean(fixes)
    assert accepted.num_rows + rejected.num_rows == fixes.num_rows
    assert "segment" in accepted.column_names
    assert "teleport" in rejected.column("reason").to_pylist()
    visits = tessera.cover(accepted)
    assert visits.num_rows > 100
    # One visit per (cell, device).
    assert len(set(zip(visits.column("cell").to_pylist(), visits.column("device").to_pylist()))) == visits.num_rows
    explain = tessera.score(visits, "2026-W46")
    assert explain.schema.field("points").type == pa.decimal128(38, 6)
    # A first epoch: every cell is a discovery, rank 1, freshness 2.
    assert set(explain.column("freshness_w").to_pylist()) == {Decimal("2.000000")}
    pool = 10**36 + 7
    pts = pa.table({"recipient": ["0xa", "0xb", "0xc"], "points": pa.array([Decimal("1.5"), Decimal("2.25"), Decimal("0.000001")], pa.decimal128(38, 6))})
    out = tessera.allocate(pool, pts)
    assert sum(int(x) for x in out.column("amount").to_pylist()) == pool


def test_score_with_prior_coverage_and_registry(lake):
    s46 = tessera.run_epoch(lake, "2026-W46", 1000)
    # The file stores explain's decimals with 18 digits (Parquet layout 4); epoch_table gives
    # the table's schema, Decimal128(38, 6), with the same values.
    explain = tessera.epoch_table(lake, "2026-W46", "explain")
    assert explain.schema.field("points").type == pa.decimal128(38, 6)
    import pyarrow.parquet as pq

    on_disk = pq.read_table(Path(lake) / "epochs" / "2026-W46" / "explain.parquet")
    assert on_disk.schema.field("points").type == pa.decimal128(18, 6)
    for c in ["rank_w", "freshness_w", "quality_w", "region_w", "trust_w", "points"]:
        assert on_disk.column(c).to_pylist() == explain.column(c).to_pylist() and explain.num_rows > 0
    coverage = tessera.epoch_table(lake, "2026-W46", "coverage")
    fixes, _, _, _ = tessera.read_trace(SAMPLE / "car-001" / "2026-W47-trip1.nmea", device="car-001")
    visits = tessera.cover(tessera.clean(fixes)[0])
    reg = (Path(lake) / "registry.csv").read_text()
    e = tessera.score(visits, "2026-W47", coverage=coverage, registry=reg)
    ages = [a for a in e.column("age_epochs").to_pylist() if a is not None]
    assert s46["cells"] > 0 and ages and set(ages) == {1}
    assert set(e.column("recipient").to_pylist()) == {tessera.explain(lake, "2026-W46", e.column("recipient")[0].as_py())["recipient"]}


def test_lake_calls_write_the_same_bytes_as_the_cli(lake, tmp_path, fleet):
    tessera.run_epoch(lake, "2026-W46", 10**12)
    tessera.run_epoch(lake, "2026-W47", 10**12)
    cli_lake = tmp_path / "cli-lake"
    run_cli("ingest", "--lake", cli_lake, "--tree", fleet)
    for e in ["2026-W46", "2026-W47"]:
        run_cli("epoch", "run", "--lake", cli_lake, "--epoch", e, "--pool", 10**12, "--registry", Path(fleet) / "registry.csv")
        ours = {p.name: p.read_bytes() for p in (Path(lake) / "epochs" / e).iterdir()}
        theirs = {p.name: p.read_bytes() for p in (cli_lake / "epochs" / e).iterdir()}
        assert ours.keys() == theirs.keys()
        for name in ours:
            assert ours[name] == theirs[name], f"{e}/{name} differs between Python and CLI"
    # And the CLI's view of a Python-written epoch: verify, proof.
    assert "match byte for byte" in run_cli("epoch", "verify", "--lake", lake, "--epoch", "2026-W47")
    claim = tessera.proof(lake, "2026-W47", tessera.epoch_table(lake, "2026-W47", "rewards").column("recipient")[0].as_py())
    cli_claim = json.loads(run_cli("proof", "--lake", lake, "--epoch", "2026-W47", claim["recipient"]))
    assert claim == cli_claim


def test_verify_manifest_and_explain(lake):
    tessera.run_epoch(lake, "2026-W46", 777)
    r = tessera.verify_epoch(lake, "2026-W46")
    assert r["ok"] is True and "rewards.parquet" in r["checked"]
    m = tessera.read_manifest(lake, "2026-W46")
    assert m["pool"] == "777" and m["allocated"] == "777"
    rewards = tessera.epoch_table(lake, "2026-W46", "rewards").to_pandas()
    assert int(sum(rewards["amount"])) == 777
    x = tessera.explain(lake, "2026-W46", rewards["recipient"][0])
    assert x["devices"] and x["top_visits"]
    # Tamper: verify says which file.
    p = Path(lake) / "epochs" / "2026-W46" / "policy.toml"
    p.write_text(p.read_text().replace("refresh_epochs = 4", "refresh_epochs = 5"))
    bad = tessera.verify_epoch(lake, "2026-W46")
    assert bad["ok"] is False and any(m["file"] == "policy.toml" for m in bad["mismatches"])


def test_diff_policy_writes_nothing(lake):
    tessera.run_epoch(lake, "2026-W46", 10**9)
    before = (Path(lake) / "epochs" / "2026-W46" / "rewards.parquet").read_bytes()
    d = tessera.diff_policy(lake, "2026-W46", "[novelty]\nrank_weights = [1.0]\n")
    assert sum(int(x["after"]) for x in d) == 10**9
    assert before == (Path(lake) / "epochs" / "2026-W46" / "rewards.parquet").read_bytes()


def test_errors_are_tessera_errors_with_the_rust_message(lake, tmp_path):
    with pytest.raises(tessera.TesseraError, match="invalid epoch"):
        tessera.run_epoch(lake, "2026-47", 1)
    bad_policy = tmp_path / "p.toml"
    bad_policy.write_text("[novelty]\nrefresh_epoch = 2\n")
    with pytest.raises(tessera.TesseraError, match="refresh_epoch"):
        tessera.run_epoch(lake, "2026-W46", 1, policy=bad_policy)
    bad_reg = tmp_path / "r.csv"
    bad_reg.write_text("device_id,wallet\ncar-1,nope\n")
    with pytest.raises(tessera.TesseraError, match="line 2"):
        tessera.run_epoch(lake, "2026-W46", 1, registry=bad_reg)
    with pytest.raises(tessera.TesseraError, match="10\\^38"):
        tessera.run_epoch(lake, "2026-W46", 10**38)
    with pytest.raises(tessera.TesseraError, match="column \"segment\" is missing"):
        tessera.cover(pa.table({"device": ["x"]}))
    with pytest.raises(tessera.TesseraError):
        tessera.allocate(-1, pa.table({"recipient": ["a"], "points": pa.array([1], pa.uint64())}))
    with pytest.raises(tessera.TesseraError, match="received nothing"):
        tessera.run_epoch(lake, "2026-W46", 5)
        tessera.proof(lake, "2026-W46", "0x000000000000000000000000000000000000dead")
    # Malformed bytes never crash the interpreter.
    fixes, rej, lines = tessera.parse_trace(b"\x00\xff$GPGGA,,,*\n" * 100, device="x")
    assert fixes.num_rows == 0 and rej.num_rows == 100


def test_the_gil_is_released_during_long_rust_work(lake):
    # This thread stamps the time while another runs epochs. Had the GIL been held while Rust
    # worked, no stamp could fall inside a call: with a switch interval of 0.1 ms this thread can
    # hold the GIL only at a call's edges (before the worker enters Rust, after it returns). No
    # threshold on how long anything takes: a call too short to have an inside is not judged.
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.0001)
    calls, stamps = [], []
    done = threading.Event()

    def work():
        for e in ["2026-W46", "2026-W47"] * 4:
            t0 = time.perf_counter()
            tessera.run_epoch(lake, e, 10**6)
            calls.append((t0, time.perf_counter()))
        done.set()

    t = threading.Thread(target=work)
    try:
        t.start()
        while not done.is_set():
            stamps.append(time.perf_counter())
        t.join()
    finally:
        sys.setswitchinterval(old)
    edge = 0.0005  # five switch intervals
    judged = [(a + edge, b - edge) for a, b in calls if b - a > 4 * edge]
    assert judged, calls
    inside = sum(bisect.bisect_left(stamps, b) - bisect.bisect_right(stamps, a) for a, b in judged)
    assert inside > 100, (inside, len(stamps), calls)


def test_docstrings_explain_the_api():
    for f in [tessera.read_trace, tessera.clean, tessera.cover, tessera.score, tessera.allocate, tessera.run_epoch, tessera.verify_epoch, tessera.proof]:
        assert f.__doc__ and len(f.__doc__) > 40, f.__name__
    assert (Path(tessera.__file__).parent / "py.typed").exists()


def test_the_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    text = (REPO / "README.md").read_text()
    code = text.split("### From Python\n\n```python\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) == 5
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "lake" / "epochs" / "2026-W46" / "rewards.parquet").exists()


def test_geoparquet_export_is_read_by_pyarrow_with_geo_metadata_and_valid_wkb(lake, tmp_path):
    import struct

    import pyarrow.parquet as pq

    tessera.run_epoch(lake, "2026-W46", 1000)
    out = tmp_path / "cells.parquet"
    run_cli("export", "cells", "--lake", lake, "--epoch", "2026-W46", "--output", out)
    t = pq.read_table(out)
    geo = json.loads(t.schema.metadata[b"geo"])
    assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry"
    col = geo["columns"]["geometry"]
    assert col["encoding"] == "WKB" and col["geometry_types"] == ["Polygon"]
    assert col["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]
    assert t.num_rows == tessera.epoch_table(lake, "2026-W46", "coverage").num_rows > 0
    xs, ys = [], []
    for wkb, bbox in zip(t.column("geometry").to_pylist()[:200], t.column("bbox").to_pylist()[:200]):
        order, kind, rings, n = struct.unpack_from("<BIII", wkb)
        assert (order, kind, rings) == (1, 3, 1) and n >= 7
        pts = [struct.unpack_from("<dd", wkb, 13 + 16 * i) for i in range(n)]
        assert pts[0] == pts[-1], "ring must be closed"
        assert min(p[0] for p in pts) == bbox["xmin"] and max(p[1] for p in pts) == bbox["ymax"]
        xs += [p[0] for p in pts]
        ys += [p[1] for p in pts]
    # The simulated city is Berlin, in lon/lat order (OGC:CRS84).
    assert 13.3 < min(xs) and max(xs) < 13.5 and 52.4 < min(ys) and max(ys) < 52.6
    assert geo["columns"]["geometry"]["bbox"][0] <= min(xs)


def test_render_draws_the_same_png_as_the_cli_and_reports_its_legend(lake, tmp_path):
    tessera.run_epoch(lake, "2026-W46", 1000)
    out = tmp_path / "map.png"
    png, summary = tessera.render(lake, "2026-W46", output=out, color_by="points", res=12)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and out.read_bytes() == png
    assert summary["drawn_resolution"] == 12 and summary["drawn"] == summary["cells"]
    cov = tessera.epoch_table(lake, "2026-W46", "coverage")
    assert summary["cells"] == cov.num_rows
    assert sum(e["cells"] for e in summary["legend"]) == summary["drawn"]
    cli = tmp_path / "cli.png"
    run_cli("render", "--lake", lake, "--epoch", "2026-W46", "--output", cli, "--color", "points", "--res", "12")
    assert cli.read_bytes() == png
    with pytest.raises(tessera.TesseraError, match="unknown colouring"):
        tessera.render(lake, "2026-W46", color_by="speed")
    with pytest.raises(tessera.TesseraError, match="2026-W40 has not been run"):
        tessera.render(lake, "2026-W40")


def test_a_float_bool_or_negative_pool_is_refused_everywhere_a_pool_is_taken(lake):
    pts = pa.table({"recipient": ["0xa"], "points": pa.array([Decimal("1")], pa.decimal128(38, 6))})
    for bad in [1e24, 10.0, True]:
        with pytest.raises(TypeError, match="int"):
            tessera.run_epoch(lake, "2026-W46", bad)
        with pytest.raises(TypeError, match="int"):
            tessera.allocate(bad, pts)
    with pytest.raises(tessera.TesseraError, match="non-negative"):
        tessera.run_epoch(lake, "2026-W46", -1)
    assert not (Path(lake) / "epochs" / "2026-W46").exists()
    s = tessera.run_epoch(lake, "2026-W46", 10**24)
    assert s["pool"] == 10**24 and s["allocated"] == 10**24 and isinstance(s["top"][0]["amount"], int)


def test_a_published_epoch_is_immutable_from_python_too(lake):
    tessera.run_epoch(lake, "2026-W46", 1000)
    before = (Path(lake) / "epochs" / "2026-W46" / "manifest.json").read_bytes()
    tessera.run_epoch(lake, "2026-W46", 1000)  # same bytes: a no-op
    with pytest.raises(tessera.TesseraError, match="immutable"):
        tessera.run_epoch(lake, "2026-W46", 2000)
    assert (Path(lake) / "epochs" / "2026-W46" / "manifest.json").read_bytes() == before
    assert tessera.run_epoch(lake, "2026-W46", 2000, replace=True)["pool"] == 2000
    with pytest.raises(tessera.TesseraError, match="no-prior"):
        tessera.run_epoch(lake, "2026-W48", 1000)  # W47 has sources but was never run
    tessera.run_epoch(lake, "2026-W47", 1000)
    tessera.run_epoch(lake, "2026-W48", 1000)


def test_a_rerun_of_a_published_epoch_whose_policy_toml_is_corrupt_names_the_file(lake):
    tessera.run_epoch(lake, "2026-W46", 1000)
    policy = Path(lake) / "epochs" / "2026-W46" / "policy.toml"
    policy.write_text("[quality\n")
    # Without policy_path the published epoch's own policy is used: it cannot be parsed.
    with pytest.raises(tessera.TesseraError, match=r"(?s)policy\.toml.*policy_path"):
        tessera.run_epoch(lake, "2026-W46", 1000)


def test_ingest_commits_a_group_and_names_every_file_that_is_not_a_trace(tmp_path, fleet):
    note = tmp_path / "note.txt"
    note.write_text("not a trace\n")
    files = trace_files(fleet)[:3]
    with pytest.raises(tessera.TesseraError, match="note.txt: not a trace"):
        tessera.ingest(tmp_path / "lake", "car-x", [files[0], note, files[1]])
    # The good files went in (a second ingest finds them as duplicates).
    out = tessera.ingest(tmp_path / "lake", "car-x", files[:2])
    assert [o["duplicate"] for o in out] == [True, True]


def test_read_manifest_goes_through_the_typed_manifest(lake):
    tessera.run_epoch(lake, "2026-W46", 1000)
    m = tessera.read_manifest(lake, "2026-W46")
    assert m["format"] == "tessera-epoch-manifest/1" and m["pool"] == "1000" and m["status"] == "allocated"
    p = Path(lake) / "epochs" / "2026-W46" / "manifest.json"
    p.write_text('{"format": "something-else"}')
    with pytest.raises(tessera.TesseraError, match="manifest"):
        tessera.read_manifest(lake, "2026-W46")


def test_ingest_records_the_receipt_time_and_rejects_fixes_after_it(tmp_path, fleet):
    import datetime as dt

    files = trace_files(fleet)
    early = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)  # before every sample fix
    out = tessera.ingest(tmp_path / "lake", "car-x", files[:1], received_at=early)
    meta = out[0]["meta"]
    assert meta["received_at"] == "2026-11-01T00:00:00.000Z"
    assert meta["fixes"] == 0 and meta["rejected_by_reason"]["after_receipt"] > 0
    with pytest.raises(ValueError):
        tessera.ingest(tmp_path / "lake", "car-x", files[1:2], received_at=dt.datetime(2026, 12, 1))
    late = tessera.ingest(tmp_path / "lake", "car-x", files[1:2])
    assert late[0]["meta"]["received_at"].startswith("20") and late[0]["meta"]["fixes"] > 0


def test_trust_review_names_the_dishonest_drivers_with_evidence(lake, fleet):
    tessera.run_epoch(lake, "2026-W46", 10**12)
    r = tessera.review(lake, "2026-W46")
    flagged = {d["device"]: d for d in r["devices"]}
    # The simulator's last three drivers: one jumps 3 km mid-trip, one drives 20 s at 95 m/s,
    # one is not registered.
    n = len([p for p in Path(fleet).iterdir() if p.is_dir()])
    teleporter, speeder = f"car-{n - 2:03}", f"car-{n - 1:03}"
    dishonest = {teleporter, speeder}
    assert dishonest <= set(flagged)
    d = flagged[teleporter]
    assert "impossible_bridge" in d["detectors"]
    assert isinstance(d["points_without_trust"], str) and Decimal(d["points_without_trust"]) > Decimal(d["points"])
    ev = d["evidence"][0]
    assert ev["policy_key"].startswith("trust.") and ev["measured"] and ev["threshold"]
    flags = tessera.epoch_table(lake, "2026-W46", "flags")
    assert flags.num_rows >= len(r["devices"])
    # Honest drivers keep everything: nothing of a cheating kind against them.
    cheating = {
        dev for dev, eff in zip(flags.column("device").to_pylist(), flags.column("effect").to_pylist())
        if eff in ("withhold_segment", "withhold_window")
    }
    assert cheating == dishonest
