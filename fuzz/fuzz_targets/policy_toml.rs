//! Policy TOML: an error or a policy whose kernels build or fail with an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(p) = tessera::policy::Policy::from_toml_str(text) {
        let _ = p.kernels();
        // What is accepted round-trips through its own TOML.
        let again = tessera::policy::Policy::from_toml_str(&p.to_toml()).expect("own TOML reads back");
        assert_eq!(again.to_toml(), p.to_toml());
    }
});
