//! BlackVue `free` box contents: child boxes and `3gf` records never panic and never read past
//! the input.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tessera::ingest::telemetry::blackvue::{children, records};

fuzz_target!(|data: &[u8]| {
    let b = children(data);
    if let Some((g, at)) = b.gps {
        assert!(at + g.len() <= data.len());
    }
    let (r, rest) = records(data);
    assert!(r.len() * 10 + rest <= data.len());
    assert!(rest < 10);
});
