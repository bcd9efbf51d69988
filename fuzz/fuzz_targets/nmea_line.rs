//! One line checked the way ingest checks it (what `tessera check` and the capture use).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let _ = tessera::ingest::nmea::check_line(&line);
});
