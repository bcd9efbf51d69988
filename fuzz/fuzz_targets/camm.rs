//! CAMM packets: never panics; what decodes re-encodes to the same payload fields.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tessera::ingest::telemetry::camm::{decode, encode, Packet, CASE_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = decode(data) {
        let case = u16::from_le_bytes([data[2], data[3]]) as usize;
        assert!(data.len() >= 4 + CASE_LEN[case]);
        // Every case but 6 (whose vertical and speed accuracies tessera does not keep) and the
        // unused ones re-encodes byte for byte.
        if matches!(p, Packet::Imu(..) | Packet::Position { .. }) {
            assert_eq!(&encode(&p)[..], &data[..4 + CASE_LEN[case]]);
        }
    }
});
