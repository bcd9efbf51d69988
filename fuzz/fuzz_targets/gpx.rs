//! GPX documents: never panics, every point accounted for.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = tessera::ingest::gpx::parse(data);
    assert!(p.lines.balanced(), "{:?}", p.lines);
    for f in &p.fixes {
        assert!(f.lat.abs() <= 90.0 && f.lon.abs() <= 180.0, "{f:?}");
    }
});
