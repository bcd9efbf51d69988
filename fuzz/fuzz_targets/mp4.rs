//! MP4 files (GPMF, CAMM, BlackVue, or junk): the box walker and sample tables never panic,
//! loop or allocate past the input, and every sample is accounted for.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tessera::ingest::telemetry::mp4::index(&mut std::io::Cursor::new(data));
    let p = tessera::ingest::telemetry::parse_mp4(&mut std::io::Cursor::new(data), None);
    assert!(p.lines.balanced(), "{:?}", p.lines);
    assert_eq!(p.lines.imu, p.imu.len() as u64);
    for f in &p.fixes {
        assert!(f.lat.abs() <= 90.0 && f.lon.abs() <= 180.0, "{f:?}");
    }
});
