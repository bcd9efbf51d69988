"""Camera telemetry as tessera reads it, against mapillary-tools 0.14.7 (an independent reader of
GoPro GPMF, CAMM and BlackVue files): every GPS point (time, lat, lon, alt) and every IMU sample
(count, time, x, y, z), on the shared corpus and on the simulator's camera files."""

import os
from pathlib import Path

import pyarrow.compute as pc
import pytest

import tessera

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus" / "telemetry"

from mapillary_tools.blackvue_parser import extract_blackvue_info
from mapillary_tools.camm import camm_parser
from mapillary_tools.gpmf import gpmf_parser


def corpus(name):
    p = CORPUS / name
    if not p.exists():
        if os.environ.get("TESSERA_REQUIRE_CORPUS") == "1":
            raise AssertionError(f"TESSERA_REQUIRE_CORPUS=1 but {p} is missing")
        pytest.skip(f"shared corpus {p} not present")
    return p


def theirs(path, kind):
    """mapillary-tools' GPS points and IMU samples of a file."""
    with open(path, "rb") as f:
        if kind == "gopro":
            info = gpmf_parser.extract_gopro_info(f)
            f.seek(0)
            imu = gpmf_parser.extract_gopro_info(f, telemetry_only=True)
            return info.gps, imu
        if kind == "camm":
            info = camm_parser.extract_camm_info(f)
            f.seek(0)
            imu = camm_parser.extract_camm_info(f, telemetry_only=True)
            # mapillary-tools 0.14.7 puts case 5 and case 6 points in `mini_gps`.
            return list(info.gps or []) + list(info.mini_gps or []), imu
        return extract_blackvue_info(f).gps, None


def ours(path):
    t = tessera.read_trace(path, device="cam-1")
    assert t.lines["total"] == sum(t.lines.get(k, 0) for k in ["fix", "aux", "imu", "ignored", "blank", "comment", "rejected"])
    return t


def imu_rows(t, sensor):
    sel = t.imu.filter(pc.equal(t.imu["sensor"], sensor))
    return list(zip(sel["time"].cast("int64").to_pylist(), sel["x"].to_pylist(), sel["y"].to_pylist(), sel["z"].to_pylist()))


def check_imu(t, imu, offset_us):
    """Every IMU sample: same count, x/y/z to float32, time = theirs (video seconds) + clock offset."""
    for sensor, their in [("accel", imu.accl), ("gyro", imu.gyro), ("mag", imu.magn)]:
        mine = imu_rows(t, sensor)
        their = their or []
        assert len(mine) == len(their), sensor
        for (tm, x, y, z), s in zip(mine, their):
            assert abs(tm - (offset_us + round(s.time * 1e6))) <= 1, (sensor, tm, s)
            for a, b in [(x, s.x), (y, s.y), (z, s.z)]:
                assert abs(a - b) <= 1e-5 * max(1.0, abs(b)), (sensor, a, b)


def test_gopro_max_every_gps_point_and_imu_sample_agree_with_mapillary_tools():
    path = corpus("gopro/max-heromode.mp4")
    gps, imu = theirs(path, "gopro")
    t = ours(path)
    assert t.lines["telemetry"]["kind"] == "gpmf" and t.lines["telemetry"]["clock"] == "gps"
    assert t.fixes.num_rows == len(gps) == 191
    # tessera's clock: the median over payloads of (GPSU − payload start); mapillary-tools gives
    # each payload's GPSU as epoch_time and the payload-relative sample time as time.
    firsts = {}
    for p in gps:
        firsts.setdefault(p.epoch_time, p.time)
    offsets = sorted(e - t0 for e, t0 in firsts.items())
    offset = offsets[(len(offsets) - 1) // 2]
    times = t.fixes["time"].cast("int64").to_pylist()
    for (tm, lat, lon, alt), p in zip(zip(times, t.fixes["lat"].to_pylist(), t.fixes["lon"].to_pylist(), t.fixes["alt_m"].to_pylist()), gps):
        assert abs(tm - round((p.time + offset) * 1000)) <= 1
        assert (lat, lon) == (p.lat, p.lon)
        assert abs(alt - p.alt) < 1e-3
        # and within 1.5 s of the payload's own GPSU (the first payload's GPSU is stale)
        assert abs(tm / 1000 - (p.epoch_time + p.time - firsts[p.epoch_time])) < 1.5
    check_imu(t, imu, round(offset * 1e6))


def test_karma_imu_only_video_agrees_and_takes_the_container_clock():
    path = corpus("gopro/karma.mp4")
    gps, imu = theirs(path, "gopro")
    t = ours(path)
    assert t.fixes.num_rows == len(gps) == 0
    assert t.lines["telemetry"]["clock"] == "container"
    first = imu_rows(t, "accel")[0][0]
    check_imu(t, imu, first - round(imu.accl[0].time * 1e6))


def test_camm_written_by_mapillary_tools_reads_back_point_for_point():
    path = corpus("camm/max-heromode.camm.mp4")
    gps, _ = theirs(path, "camm")
    t = ours(path)
    # mapillary-tools writes Unix seconds where CAMM wants GPS time: tessera notices and says so.
    assert t.lines["telemetry"]["clock"] == "camm_unix"
    assert t.fixes.num_rows == len(gps) == 191
    # mapillary-tools stamps each ~1 s batch with one time; tessera's clock is the median of
    # (case-6 time − sample time), every fix at its sample time on it.
    offsets = sorted(p.time_gps_epoch - p.time for p in gps)
    offset = offsets[(len(offsets) - 1) // 2]
    for tm, lat, lon, alt, p in zip(
        t.fixes["time"].cast("int64").to_pylist(), t.fixes["lat"].to_pylist(), t.fixes["lon"].to_pylist(), t.fixes["alt_m"].to_pylist(), gps
    ):
        assert abs(tm - round((p.time + offset) * 1000)) <= 1
        # within a batch's length (1 s) plus the stale first GPSU (1.47 s) of the batch's stamp
        assert abs(tm / 1000 - p.time_gps_epoch) < 2.5
        assert (lat, lon) == (p.lat, p.lon)
        assert abs(alt - p.alt) < 1e-3


@pytest.mark.parametrize("camera", ["camm", "blackvue-mp4"])
def test_simulated_camera_files_read_the_same_in_mapillary_tools(tmp_path, camera, monkeypatch):
    monkeypatch.setenv("MAPILLARY__EXPERIMENTAL_ENABLE_IMU", "YES")
    tessera.simulate(tmp_path, drivers=4, epochs=1, trips=1, minutes=2, camera=camera)
    files = sorted(tmp_path.glob("car-*/*.mp4"))
    assert len(files) == 4
    for path in files:
        t = ours(path)
        gps, imu = theirs(path, "camm" if camera == "camm" else "blackvue")
        assert t.fixes.num_rows == len(gps) == 120
        times = t.fixes["time"].cast("int64").to_pylist()
        for tm, lat, lon, p in zip(times, t.fixes["lat"].to_pylist(), t.fixes["lon"].to_pylist(), gps):
            assert abs(lat - p.lat) < 1e-7 and abs(lon - p.lon) < 1e-7
            assert abs((tm - times[0]) / 1000 - (p.time - gps[0].time)) < 1e-3
        if camera == "camm":
            assert len(imu.accl) == len(imu_rows(t, "accel")) == 1190
            check_imu(t, imu, imu_rows(t, "accel")[0][0] - round(imu.accl[0].time * 1e6))
        else:
            # mapillary-tools does not read BlackVue's 3gf; tessera keeps it as accelerometer rows.
            assert len(imu_rows(t, "accel")) == 1190 and t.lines["telemetry"]["axes"].startswith("blackvue")


def test_sql_counts_the_imu_samples_of_an_ingested_video(tmp_path):
    from conftest import run_cli

    path = corpus("gopro/max-heromode.mp4")
    lake = tmp_path / "lake"
    run_cli("ingest", "--lake", lake, "--device", "cam-1", "--received-at", "2019-11-19T00:00:00Z", path)
    out = run_cli("sql", "--lake", lake, "--format", "csv", "SELECT sensor, count(*) AS n FROM imu GROUP BY sensor ORDER BY sensor")
    assert out.split() == ["sensor,n", "accel,2082", "gyro,2082", "mag,260"]
