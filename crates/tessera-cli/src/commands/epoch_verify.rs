//! `tessera epoch verify`: recompute an epoch and compare every byte (exit 2 on a mismatch).

use crate::cli::EpochArg;
use crate::output::{bar, print_json, stage_progress};
use anyhow::Result;
use std::path::Path;

pub fn run(at: &EpochArg, manifest: Option<&Path>, json: bool) -> Result<()> {
    let lake = super::open_lake(&at.lake)?;
    let pb = bar(0, "recompute", json);
    let r = tessera::audit::verify(&lake, &at.epoch, manifest, &stage_progress(&pb))?;
    pb.finish_and_clear();
    if json {
        print_json(&r)?;
    } else if r.ok {
        println!(
            "epoch {}: all {} files recomputed from the lake match byte for byte ✓",
            r.epoch,
            r.checked.len()
        );
    } else {
        println!("epoch {}: MISMATCH in {} file(s)", r.epoch, r.mismatches.len());
        for m in &r.mismatches {
            println!("  {}: {}", m.file, m.problem);
            for row in &m.published_only {
                println!("    published : {row}");
            }
            for row in &m.recomputed_only {
                println!("    recomputed: {row}");
            }
        }
    }
    if !json && !r.late_sources.is_empty() {
        println!(
            "late data: {} source(s) with fixes in {} arrived after it was published; not paid, not recomputed:",
            r.late_sources.len(),
            r.epoch
        );
        for s in &r.late_sources {
            println!("  {s}");
        }
    }
    if !r.ok {
        std::process::exit(2);
    }
    Ok(())
}
