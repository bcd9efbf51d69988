//! Registry CSV: an error naming a line, or a registry whose every device resolves.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = tessera::registry::Registry::parse(data, "fuzz.csv") {
        let _ = r.len();
    }
});
