//! The BlackVue (`[ms]` prefix) and Android GnssLogger (`NMEA,...,ms`) framings: the first
//! byte picks one and a frame time, each line of the rest is wrapped in it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let ms = 1_794_824_100_000i64 + i64::from(sel) * 997_000_000;
    let mut framed = Vec::with_capacity(rest.len() * 2);
    for line in rest.split(|b| *b == b'\n') {
        if sel & 1 == 0 {
            framed.extend_from_slice(format!("[{ms}]").as_bytes());
            framed.extend_from_slice(line);
        } else {
            framed.extend_from_slice(b"NMEA,");
            framed.extend_from_slice(line);
            framed.extend_from_slice(format!(",{ms}").as_bytes());
        }
        framed.push(b'\n');
    }
    let p = tessera::ingest::nmea::parse(&framed);
    assert!(p.lines.balanced(), "{:?}", p.lines);
});
