//! tessera at the device edge: live capture from a GNSS receiver on a serial port
//! ([`capture`]), ed25519-signed uploads ([`signing`], [`client`]) and the ingest server that
//! checks them and stores accepted traces content-addressed in the lake ([`server`]).

pub mod capture;
pub mod client;
pub mod server;
pub mod signing;

/// Milliseconds since the Unix epoch, from the wall clock (the device edge is where real time
/// lives; nothing in the reward pipeline reads it).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
