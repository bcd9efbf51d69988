//! Camera telemetry of the shared corpus (GoPro GPMF MP4s and raw payloads from gpmf-parser, a
//! CAMM MP4 written by mapillary-tools): every sample accounted for, the counts the independent
//! reader (mapillary-tools 0.14.7, compared point by point in `python/tests/test_telemetry.py`)
//! reports, the same result from bytes in memory and from the file by seeking, and every cut of a
//! file a clear rejection, never a panic.

#[path = "support/corpus.rs"]
mod support;

use std::io::Cursor;
use tessera::ingest::telemetry::{parse_mp4, Sensor};
use tessera::ingest::{self, Reason};

/// (file, GPS points, accelerometer, gyroscope, magnetometer samples) as mapillary-tools reads
/// them (`extract_gopro_info`/`extract_camm_info`; for raw payloads, one 1 s sample).
const EXPECTED: [(&str, usize, usize, usize, usize); 8] = [
    ("gopro/max-heromode.mp4", 191, 2082, 2082, 260),
    ("gopro/karma.mp4", 0, 2397, 4795, 0),
    ("camm/max-heromode.camm.mp4", 191, 0, 0, 0),
    ("gopro/hero5.raw", 18, 199, 399, 0),
    ("gopro/hero6.raw", 17, 204, 204, 0),
    ("gopro/hero6+ble.raw", 18, 198, 198, 0),
    ("gopro/Fusion.raw", 19, 197, 3300, 25),
    ("gopro/karma.raw", 0, 196, 392, 0),
];

#[test]
fn rule_every_corpus_file_gives_the_independent_readers_counts_with_every_sample_accounted_for() {
    let Some(dir) = support::corpus("telemetry") else {
        return;
    };
    for (name, gps, acc, gyro, mag) in EXPECTED {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let p = ingest::parse(&bytes);
        assert!(p.lines.balanced(), "{name}: {:?}", p.lines);
        let n = |s| p.imu.iter().filter(|x| x.sensor == s).count();
        // hero6 and hero6+ble report no fix: their points are rejections (`no_fix`), still counted.
        let points = p.fixes.len() + p.rejections.iter().filter(|r| r.reason == Reason::NoFix).count();
        assert_eq!(points, gps, "{name}");
        // karma.raw has no GPS time and no container: its IMU samples are `no_time` rejections.
        let no_time = p.rejections.iter().filter(|r| r.reason == Reason::NoTime).count();
        assert_eq!(
            n(Sensor::Accel) + n(Sensor::Gyro) + n(Sensor::Mag) + no_time,
            acc + gyro + mag,
            "{name}"
        );
        if no_time == 0 {
            assert_eq!(
                (n(Sensor::Accel), n(Sensor::Gyro), n(Sensor::Mag)),
                (acc, gyro, mag),
                "{name}"
            );
        }
        let t = p.telemetry.as_ref().unwrap();
        assert_eq!(t.kind, if name.starts_with("camm") { "camm" } else { "gpmf" }, "{name}");
        // Times are monotonic per sensor and fixes strictly increasing.
        assert!(p.fixes.windows(2).all(|w| w[0].time_ms < w[1].time_ms), "{name}");
        if name.ends_with(".mp4") {
            // The same from the file, by seeking.
            let mut f = std::io::BufReader::new(std::fs::File::open(dir.join(name)).unwrap());
            let q = parse_mp4(&mut f, None);
            assert_eq!(
                (q.fixes, q.imu, q.lines),
                (p.fixes.clone(), p.imu.clone(), p.lines.clone()),
                "{name}"
            );
        }
    }
}

#[test]
fn rule_a_truncated_video_is_a_clear_error_never_a_panic() {
    let Some(dir) = support::corpus("telemetry") else {
        return;
    };
    for name in ["gopro/max-heromode.mp4", "camm/max-heromode.camm.mp4"] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        for k in 1..64 {
            let cut = bytes.len() * k / 64;
            let p = parse_mp4(&mut Cursor::new(&bytes[..cut]), None);
            assert!(p.lines.balanced(), "{name} cut at {cut}");
            // Either the index fails (moov cut or a box past the end: one bad_file naming it) or
            // the samples past the end are rejected one by one as truncated.
            let whole = p.rejections.iter().any(|r| r.reason == Reason::BadFile);
            let cut_samples = p.rejections.iter().filter(|r| r.reason == Reason::Truncated).count();
            assert!(
                whole || cut_samples > 0 || p.fixes.len() == 191,
                "{name} cut at {cut}: {:?}",
                p.rejections.first()
            );
            if whole {
                assert!(p.rejections[0].detail.contains("byte"), "{}", p.rejections[0].detail);
            }
        }
    }
}

#[test]
fn rule_a_video_ingests_from_disk_into_the_lake_with_its_imu_table_idempotently() {
    let Some(dir) = support::corpus("telemetry") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let lake = tessera::lake::Lake::open(d.path()).unwrap();
    let path = dir.join("gopro/max-heromode.mp4");
    // The camera's clock says 2019: an archive, received the day after.
    let received = 1_574_208_000_000;
    let a = lake.ingest_path("cam-1", &path, Some(received)).unwrap();
    assert!(!a.duplicate);
    assert_eq!((a.meta.fixes, a.meta.imu), (191, 4424));
    assert_eq!(a.meta.format.as_str(), "mp4");
    assert_eq!(a.meta.telemetry.as_ref().unwrap().clock, "gps");
    assert_eq!(lake.read_imu(&a.meta.hash).unwrap().len(), 4424);
    assert_eq!(
        std::fs::read(d.path().join(format!("sources/{}.mp4", a.meta.hash))).unwrap(),
        std::fs::read(&path).unwrap()
    );
    assert!(lake.ingest_path("cam-1", &path, Some(received)).unwrap().duplicate);
    // The copy a duplicate was hashed from is not left behind.
    let names: Vec<String> = std::fs::read_dir(d.path().join("sources"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // The same bytes in memory are the same source.
    assert!(
        lake.ingest("cam-2", "copy.mp4", &std::fs::read(&path).unwrap())
            .unwrap()
            .duplicate
    );
    // A video without telemetry is refused, naming the tracks it has.
    let karma = std::fs::read(dir.join("gopro/karma.mp4")).unwrap();
    let mut no_tel = karma.clone();
    for w in no_tel
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"gpmd")
        .map(|(i, _)| i)
        .collect::<Vec<_>>()
    {
        no_tel[w..w + 4].copy_from_slice(b"xxxx");
    }
    let e = lake.ingest("cam-1", "plain.mp4", &no_tel).unwrap_err().to_string();
    assert!(e.contains("no telemetry") && e.contains("avc1"), "{e}");
}
