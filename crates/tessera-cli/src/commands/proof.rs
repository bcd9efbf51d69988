//! `tessera proof`: a wallet's amount, leaf and merkle proof (or every claim) as JSON.

use crate::cli::EpochArg;
use crate::output::print_json;
use anyhow::Result;

pub fn run(at: &EpochArg, recipient: Option<&str>, all: bool) -> Result<()> {
    let lake = super::open_lake(&at.lake)?;
    let doc = tessera::audit::proof(&lake, &at.epoch, if all { None } else { recipient })?;
    if all {
        return print_json(&doc);
    }
    let c = &doc.claims[0];
    print_json(
        &serde_json::json!({"epoch": doc.epoch, "scheme": doc.scheme, "root": doc.root, "recipient": c.recipient, "amount": c.amount, "leaf": c.leaf, "proof": c.proof}),
    )
}
