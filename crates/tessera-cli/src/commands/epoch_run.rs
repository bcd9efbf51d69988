//! `tessera epoch run`: compute an epoch and publish `epochs/E/` (immutable once published).

use crate::cli::RunArgs;
use crate::output::{bar, print_json, print_summary, stage_progress};
use anyhow::{bail, Result};
use tessera::pipeline::{self, EpochInputs, RunOptions};

pub fn run(a: &RunArgs, json: bool) -> Result<()> {
    let lake = super::open_lake(&a.at.lake)?
        .with_batch_rows(a.batch_rows)
        .with_max_visits(a.max_visits);
    // Places are cached in the lake (`cache/places/`): built once per policy, sources and build.
    let cache = lake.path("cache/places");
    let (policy_text, policy, places, places_parquet) = super::load_policy_cached(a.policy.as_deref(), Some(&cache))?;
    let pool = match (a.pool, &policy.emission) {
        (Some(p), _) => p,
        (None, Some(em)) => em
            .pool_for(a.at.epoch)
            .map_err(|m| anyhow::anyhow!("policy [emission]: {m}"))?,
        (None, None) => bail!("no pool: pass --pool BASE_UNITS or give the policy an [emission] schedule"),
    };
    let inputs = EpochInputs {
        epoch: a.at.epoch,
        pool,
        policy_text,
        registry: super::load_registry(&lake, a.registry.as_deref())?,
        only_sources: None,
        places,
        places_parquet,
        layout: tessera::tables::Layout::CURRENT,
        trust_rules: tessera::trust::policy::TRUST_RULES,
    };
    let opts = RunOptions {
        replace: a.replace,
        no_prior: a.no_prior,
    };
    let pb = bar(0, "clean + cover", json);
    let out = pipeline::run_with(&lake, &inputs, opts, &stage_progress(&pb))?;
    pb.finish_and_clear();
    if json {
        return print_json(&out.summary);
    }
    if out.unchanged {
        println!(
            "epoch {} is already published with exactly these bytes: nothing written",
            a.at.epoch
        );
    }
    print_summary(&out.summary);
    Ok(())
}
