//! NMEA 0183 text as uploaded (any framing): never panics, every line accounted for, every
//! accepted fix in range.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = tessera::ingest::nmea::parse(data);
    assert!(p.lines.balanced(), "{:?}", p.lines);
    assert_eq!(p.lines.rejected as usize, p.rejections.len());
    for f in &p.fixes {
        assert!(f.lat.abs() <= 90.0 && f.lon.abs() <= 180.0, "{f:?}");
    }
});
