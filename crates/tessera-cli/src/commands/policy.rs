//! `tessera policy`: the default policy as TOML (what `--policy` files start from), then the
//! optional keys (regions, roads, bounties, emission, cap) with their defaults, commented out.

use anyhow::Result;
use tessera::policy::Policy;

pub fn run(json: bool) -> Result<()> {
    if json {
        return crate::output::print_json(&Policy::default());
    }
    print!("{}", Policy::default().to_toml());
    print!("{}", tessera::policy::OPTIONAL_KEYS_DOC);
    Ok(())
}
