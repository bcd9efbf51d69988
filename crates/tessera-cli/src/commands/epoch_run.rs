//! `tessera epoch run`: compute an epoch and publish `epochs/E/` (immutable once published).

use crate::cli::RunArgs;
use crate::output::{bar, print_json, print_summary, stage_progress};
use anyhow::{bail, Context, Result};
use tessera::pipeline::{self, EpochInputs, RunOptions};

pub fn run(a: &RunArgs, json: bool) -> Result<()> {
    let lake = super::open_lake(&a.at.lake)?
        .with_batch_rows(a.batch_rows)
        .with_max_visits(a.max_visits);
    let (policy_text, policy, places, places_parquet) = policy_of(&lake, a)?;
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

/// The policy to run under: `--policy` (places cached in the lake, `cache/places/`: built once
/// per policy, sources and build); without it, a published epoch's own (its `policy.toml` and
/// `places.parquet`: a re-run stays a no-op after an upgrade that added policy keys), else the
/// default.
fn policy_of(lake: &tessera::lake::Lake, a: &RunArgs) -> Result<super::CachedPolicy> {
    let cache = lake.path("cache/places");
    if a.policy.is_some() {
        return super::load_policy_cached(a.policy.as_deref(), Some(&cache));
    }
    let published = tessera::audit::policy_of_published(lake, &a.at.epoch).with_context(|| {
        format!(
            "epoch {} is published, and without --policy it is recomputed under its own policy: pass --policy to choose one",
            a.at.epoch
        )
    })?;
    let Some(p) = published else {
        return super::load_policy_cached(None, Some(&cache));
    };
    eprintln!(
        "policy: epoch {} is published: its own policy.toml (pass --policy to recompute under another)",
        a.at.epoch
    );
    Ok((p.text, p.policy, p.places, None))
}
