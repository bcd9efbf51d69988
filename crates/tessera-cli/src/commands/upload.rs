//! `tessera upload`: sign and send trace files to a tessera server.

use crate::cli::UploadArgs;
use crate::output::print_json;
use anyhow::{bail, Result};

pub fn run(a: &UploadArgs, json: bool) -> Result<()> {
    let key = tessera_net::signing::DeviceKey::load(&a.key)?;
    let mut client = tessera_net::client::Client::new(&a.server, &a.device, key);
    client.attempts = a.attempts.max(1);
    let results: Vec<_> = a.files.iter().map(|f| client.upload_file(f)).collect();
    if json {
        print_json(&results)?;
    } else {
        for r in &results {
            let what = match r.status {
                201 => "stored".to_string(),
                200 => "duplicate (already stored)".to_string(),
                0 => format!("no answer: {}", r.response),
                s => format!("refused {s}: {}", r.response),
            };
            println!("{}: {what}", r.file);
        }
    }
    let failed = results.iter().filter(|r| !r.ok).count();
    if failed > 0 {
        bail!("{failed} of {} upload(s) failed", results.len());
    }
    Ok(())
}
