//! `tessera epoch diff`: what-if under another policy, per recipient, nothing written.

use crate::cli::EpochArg;
use crate::output::print_json;
use anyhow::Result;
use std::path::Path;
use tessera::pipeline;

pub fn run(at: &EpochArg, policy: &Path, json: bool) -> Result<()> {
    let lake = super::open_lake(&at.lake)?;
    let (text, _, places) = super::load_policy(Some(policy))?;
    let lines = tessera::audit::diff_with(&lake, &at.epoch, &text, Some(places), &pipeline::no_progress)?;
    if json {
        return print_json(&lines);
    }
    println!("epoch {} under {} (nothing written):", at.epoch, policy.display());
    println!(
        "  {:<44} {:>16} {:>16} {:>17}",
        "recipient", "published", "what-if", "change"
    );
    for l in &lines {
        println!("  {:<44} {:>16} {:>16} {:>17}", l.recipient, l.before, l.after, l.delta);
    }
    Ok(())
}
