//! `tessera keygen`: a device key pair (secret key file 0600, public key printed).

use anyhow::Result;
use std::path::Path;

pub fn run(out: &Path, json: bool) -> Result<()> {
    let k = tessera_net::signing::DeviceKey::generate()?;
    k.save(out)?;
    if json {
        return crate::output::print_json(&serde_json::json!({"public_key": k.public_hex(), "key_file": out}));
    }
    println!("{}", k.public_hex());
    eprintln!(
        "secret key written to {} (mode 0600); add the public key above as the registry's pubkey column",
        out.display()
    );
    Ok(())
}
