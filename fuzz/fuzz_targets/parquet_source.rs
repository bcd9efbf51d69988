//! Parquet sources: a bad file is one `bad_file` rejection, never a panic; accepted fixes are
//! finite and in range.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = tessera::ingest::parquet::parse(data);
    assert!(p.lines.balanced(), "{:?}", p.lines);
    for f in &p.fixes {
        assert!(f.lat.is_finite() && f.lat.abs() <= 90.0 && f.lon.abs() <= 180.0, "{f:?}");
    }
});
