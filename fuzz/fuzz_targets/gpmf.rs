//! Raw GoPro GPMF payloads: never panics, every sample accounted for, fixes in range.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let d = tessera::ingest::telemetry::gpmf::decode(data);
    let p = tessera::ingest::telemetry::parse_gpmf_payload(data, None);
    assert!(p.lines.balanced(), "{:?}", p.lines);
    assert_eq!(p.lines.total, d.samples(), "{:?}", p.lines);
    for f in &p.fixes {
        assert!(f.lat.abs() <= 90.0 && f.lon.abs() <= 180.0, "{f:?}");
    }
});
