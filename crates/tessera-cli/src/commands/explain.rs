//! `tessera explain`: why a wallet got what it got.

use crate::cli::EpochArg;
use crate::output::{print_explanation, print_json};
use anyhow::Result;

pub fn run(at: &EpochArg, recipient: &str, json: bool) -> Result<()> {
    let lake = super::open_lake(&at.lake)?;
    let x = tessera::audit::explain(&lake, &at.epoch, recipient)?;
    if json {
        return print_json(&x);
    }
    print_explanation(&x);
    Ok(())
}
