//! `tessera epoch review`: the devices the trust detectors flagged in a published epoch, ranked
//! by what they would have earned with the detectors off, with the evidence and source files.

use crate::cli::EpochArg;
use crate::output::print_json;
use anyhow::Result;

pub fn run(at: &EpochArg, top: usize, json: bool) -> Result<()> {
    let lake = super::open_lake(&at.lake)?;
    let mut r = tessera::review::review(&lake, &at.epoch)?;
    r.devices.truncate(top);
    if json {
        return print_json(&r);
    }
    if r.devices.is_empty() {
        println!("epoch {}: no device was flagged", r.epoch);
        return Ok(());
    }
    println!(
        "epoch {}: {} flagged device(s), by points without the trust detectors",
        r.epoch,
        r.devices.len()
    );
    for d in &r.devices {
        println!();
        println!(
            "{} (wallet {}): {} points without trust, {} published; wallet amount {} without trust, {} published",
            d.device, d.recipient, d.points_without_trust, d.points, d.amount_without_trust, d.amount
        );
        let dets: Vec<String> = d.detectors.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
        println!("  detectors: {}", dets.join(", "));
        println!("  sources: {}", d.sources.join(", "));
        for e in d.evidence.iter().take(8) {
            crate::output::print_flag(e);
        }
        if d.evidence.len() > 8 {
            println!("  … {} more rows in flags.parquet", d.evidence.len() - 8);
        }
    }
    Ok(())
}
