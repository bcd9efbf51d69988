//! The upload request as the server sees it before reading the body: a header block (`name:
//! value` lines, then a blank line, then the body) checked by `check_headers`, and when the
//! headers pass, the signature checked against the body's BLAKE3. Never a panic; a signature
//! that verifies must be the one the device key made for exactly these bytes.
#![no_main]
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tessera_net::server::{check_headers, Limits};
use tessera_net::signing::{verify_hash, DeviceKey};

const NOW: i64 = 1_795_000_000_000;

fuzz_target!(|data: &[u8]| {
    let split = data.windows(2).position(|w| w == b"\n\n").unwrap_or(data.len());
    let (head, body) = (&data[..split], data.get(split + 2..).unwrap_or(&[]));
    let mut h = HeaderMap::new();
    for line in head.split(|b| *b == b'\n') {
        let Some(c) = line.iter().position(|b| *b == b':') else { continue };
        let (name, value) = (&line[..c], line[c + 1..].trim_ascii());
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            h.append(n, v);
        }
    }
    let key = DeviceKey::from_seed([1; 32]);
    let csv = format!("car-1,0x00000000000000000000000000000000000000a1,{}\n", key.public_hex());
    let reg = tessera::registry::Registry::parse(csv.as_bytes(), "r").unwrap();
    if let Ok(s) = check_headers(&reg, &Limits::default(), &h, NOW) {
        if verify_hash(&s.pubkey, &s.device, s.ts, &blake3::hash(body), &s.sig) {
            let expected = key.sign_upload(&s.device, s.ts, body);
            assert_eq!(hex::encode(s.sig), expected);
        }
    }
});
