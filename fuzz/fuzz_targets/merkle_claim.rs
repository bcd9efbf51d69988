//! A proof document as a claimant submits it (`tessera proof` JSON) checked against its root,
//! and a manifest read back: never a panic, and a claim that verifies is well formed.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = serde_json::from_slice::<tessera::audit::ProofDoc>(data) {
        for c in &doc.claims {
            if tessera::merkle::verify_claim(&doc.scheme, &doc.root, c) {
                assert!(c.amount.parse::<u128>().is_ok());
            }
        }
    }
    let _ = serde_json::from_slice::<tessera::manifest::Manifest>(data);
});
