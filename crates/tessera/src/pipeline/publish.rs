//! Publishing: run an epoch in a staging directory and commit it into the lake, keeping
//! published epochs immutable and refusing to skip an epoch that has sources.

use super::{compute_to_dir, EpochInputs, EpochRun, Progress};
use crate::epoch::Epoch;
use crate::lake::{sha256_file, Error, Lake, Result};
use crate::manifest::Manifest;
use std::path::Path;

/// Compute the epoch and write `epochs/E/` atomically (all files or none): the files are
/// written into a staging directory, which replaces `epochs/E` in one rename. The published-epoch
/// and missing-prior rules of [`run_with`] with its defaults apply.
///
/// # Errors
/// As [`run_with`].
///
/// ```
/// // see `run_with`
/// ```
pub fn run(lake: &Lake, inputs: &EpochInputs, progress: Progress) -> Result<EpochRun> {
    run_with(lake, inputs, RunOptions::default(), progress)
}

/// How [`run_with`] treats an epoch that is already published or a prior epoch never run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Replace a published epoch whose recomputed bytes differ (otherwise: refused).
    pub replace: bool,
    /// Run although an earlier epoch has sources in the lake but no outputs (its coverage would
    /// otherwise be missing from this epoch's prior state).
    pub no_prior: bool,
}

/// Run an epoch into the lake, keeping published epochs immutable: an epoch that already has
/// `epochs/E/` is recomputed, always in the Parquet layout it was published in
/// ([`crate::tables::Layout`], from its manifest: a later epoch's manifest holds the hash of its
/// `coverage.parquet`, so its bytes must not change while its rows do not); identical bytes are a
/// no-op ([`EpochRun::unchanged`]), different bytes are refused with what changed unless
/// [`RunOptions::replace`]. An earlier epoch with
/// sources but no outputs since the last published one is refused unless
/// [`RunOptions::no_prior`].
///
/// # Errors
/// [`Error::Published`] and [`Error::MissingPrior`] as above; [`published_layout`]'s error; I/O
/// and data errors of the run.
///
/// ```
/// use tessera::pipeline::{run_with, EpochInputs, RunOptions, no_progress};
/// # let dir = tempfile::tempdir().unwrap();
/// # let lake = tessera::lake::Lake::open(dir.path()).unwrap();
/// # let reg = tessera::registry::Registry::parse(b"device_id,wallet\n", "r").unwrap();
/// let inputs = EpochInputs::new("2026-W47".parse().unwrap(), 1000, reg);
/// assert!(!run_with(&lake, &inputs, RunOptions::default(), &no_progress).unwrap().unchanged);
/// assert!(run_with(&lake, &inputs, RunOptions::default(), &no_progress).unwrap().unchanged);
/// let more = EpochInputs { pool: 2000, ..inputs };
/// assert!(run_with(&lake, &more, RunOptions::default(), &no_progress).is_err());
/// ```
pub fn run_with(lake: &Lake, inputs: &EpochInputs, opts: RunOptions, progress: Progress) -> Result<EpochRun> {
    let own;
    let inputs = match published_terms(lake, &inputs.epoch)? {
        Some((layout, trust_rules)) if (layout, trust_rules) != (inputs.layout, inputs.trust_rules) => {
            own = EpochInputs {
                layout,
                trust_rules,
                ..inputs.clone()
            };
            &own
        }
        _ => inputs,
    };
    let staging = prepare(lake, &inputs.epoch, opts)?;
    match compute_to_dir(lake, inputs, &staging, progress) {
        Ok(out) => commit(lake, &inputs.epoch, &staging, out, opts),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

/// The layout of the published `epochs/E/`, which every run of `E` recomputes in, `--replace`
/// included (`None`: nothing published, or a manifest this build cannot parse — then the
/// comparison in [`commit`] decides); with the trust rule set, [`published_terms`].
///
/// # Errors
/// [`Error::Data`] naming the manifest when it names a layout this build does not know
/// (published by a newer tessera).
///
/// ```
/// use tessera::pipeline::{published_layout, run, EpochInputs, no_progress};
/// # let dir = tempfile::tempdir().unwrap();
/// # let lake = tessera::lake::Lake::open(dir.path()).unwrap();
/// # let reg = tessera::registry::Registry::parse(b"device_id,wallet\n", "r").unwrap();
/// let e = "2026-W47".parse().unwrap();
/// assert_eq!(published_layout(&lake, &e).unwrap(), None);
/// let old = EpochInputs { layout: tessera::tables::Layout::V1, ..EpochInputs::new(e, 1000, reg) };
/// run(&lake, &old, &no_progress).unwrap();
/// assert_eq!(published_layout(&lake, &e).unwrap(), Some(tessera::tables::Layout::V1));
/// ```
pub fn published_layout(lake: &Lake, epoch: &Epoch) -> Result<Option<crate::tables::Layout>> {
    Ok(published_terms(lake, epoch)?.map(|t| t.0))
}

/// The layout and trust rule set of the published `epochs/E/`, which every run of `E`
/// recomputes under: [`run_with`] applies them; an engine that computes the run by other means
/// (Spark, through [`prepare`] and [`commit`]) sets `inputs.layout` and `inputs.trust_rules`
/// from them. `None`: nothing published, or a manifest this build cannot parse (then the
/// comparison in [`commit`] decides).
///
/// # Errors
/// [`Error::Data`] naming the manifest when it names a layout or rule set this build does not
/// know (published by a newer tessera).
///
/// ```
/// // see `published_layout` and `published_trust_rules`
/// ```
pub fn published_terms(lake: &Lake, epoch: &Epoch) -> Result<Option<(crate::tables::Layout, u32)>> {
    let path = lake.epoch_dir(epoch).join("manifest.json");
    let Ok(bytes) = std::fs::read(&path) else {
        return Ok(None);
    };
    let Ok(m) = Manifest::from_slice(&bytes) else {
        return Ok(None);
    };
    let terms = crate::tables::Layout::of_manifest(m.layout).and_then(|l| Ok((l, trust_rules_of(&m)?)));
    terms.map(Some).map_err(|message| Error::Data {
        path: path.display().to_string(),
        message,
    })
}

/// The trust rule set of the published `epochs/E/` ([`crate::trust::policy::TRUST_RULES`]),
/// which every run of `E` judges by, as [`published_layout`] (`None`: nothing published, or a
/// manifest this build cannot parse).
///
/// # Errors
/// [`Error::Data`] naming the manifest when it names a rule set this build does not know
/// (published by a newer tessera).
///
/// ```
/// use tessera::pipeline::{published_trust_rules, run, EpochInputs, no_progress};
/// # let dir = tempfile::tempdir().unwrap();
/// # let lake = tessera::lake::Lake::open(dir.path()).unwrap();
/// # let reg = tessera::registry::Registry::parse(b"device_id,wallet\n", "r").unwrap();
/// let e = "2026-W47".parse().unwrap();
/// assert_eq!(published_trust_rules(&lake, &e).unwrap(), None);
/// run(&lake, &EpochInputs { trust_rules: 1, ..EpochInputs::new(e, 1000, reg) }, &no_progress).unwrap();
/// assert_eq!(published_trust_rules(&lake, &e).unwrap(), Some(1));
/// ```
pub fn published_trust_rules(lake: &Lake, epoch: &Epoch) -> Result<Option<u32>> {
    Ok(published_terms(lake, epoch)?.map(|t| t.1))
}

/// The trust rule set a manifest records (absent: 1).
///
/// # Errors
/// A message when it is not a set this build knows (0, or from a newer tessera).
///
/// ```
/// // see `published_trust_rules`
/// ```
pub fn trust_rules_of(m: &Manifest) -> std::result::Result<u32, String> {
    match m.trust_rules.unwrap_or(1) {
        n @ 1..=crate::trust::policy::TRUST_RULES => Ok(n),
        n => Err(format!(
            "trust rules {n}: this build knows 1 to {} (published by a newer tessera?)",
            crate::trust::policy::TRUST_RULES
        )),
    }
}

/// The first half of [`run_with`] for a run computed by other means ([`super::staged`]): the
/// missing-prior rule, then a fresh staging directory in the lake to write the outputs into.
///
/// # Errors
/// [`Error::MissingPrior`]; I/O errors.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let lake = tessera::lake::Lake::open(dir.path()).unwrap();
/// let e = "2026-W47".parse().unwrap();
/// let staging = tessera::pipeline::prepare(&lake, &e, Default::default()).unwrap();
/// assert!(staging.is_dir());
/// ```
pub fn prepare(lake: &Lake, epoch: &Epoch, opts: RunOptions) -> Result<std::path::PathBuf> {
    if !opts.no_prior
        && let Some(missing) = unpublished_prior(lake, epoch)?
    {
        return Err(Error::MissingPrior { epoch: *epoch, missing });
    }
    lake.staging_dir(epoch)
}

/// The second half of [`run_with`]: publish the outputs computed into `staging` (from
/// [`prepare`]) — a no-op when the published epoch has exactly these bytes, refused when it
/// differs (unless [`RunOptions::replace`]), else one rename. `staging` is removed when
/// nothing is published.
///
/// # Errors
/// [`Error::Published`]; I/O errors.
///
/// ```
/// // see `prepare`, and `run_with`, which calls both
/// ```
pub fn commit(lake: &Lake, epoch: &Epoch, staging: &Path, mut out: EpochRun, opts: RunOptions) -> Result<EpochRun> {
    let epoch = *epoch;
    let dest = lake.epoch_dir(&epoch);
    if dest.join("manifest.json").is_file() {
        let same = out
            .sha256
            .iter()
            .all(|(name, sha)| sha256_file(&dest.join(name)).is_ok_and(|h| h == *sha));
        if same {
            let _ = std::fs::remove_dir_all(staging);
            out.unchanged = true;
            return Ok(out);
        }
        if !opts.replace {
            let changed = published_changes(&dest, staging);
            let _ = std::fs::remove_dir_all(staging);
            return Err(Error::Published { epoch, changed });
        }
    }
    lake.commit_epoch_dir(staging, &epoch)?;
    Ok(out)
}

/// What differs between the published manifest in `dest` and the recomputed one in `staging`.
fn published_changes(dest: &Path, staging: &Path) -> Vec<String> {
    let read = |d: &Path| {
        std::fs::read(d.join("manifest.json"))
            .ok()
            .and_then(|b| Manifest::from_slice(&b).ok())
    };
    let changes = match (read(dest), read(staging)) {
        (Some(a), Some(b)) => a.input_changes(&b),
        _ => vec!["the published manifest cannot be read".into()],
    };
    if changes.is_empty() {
        vec!["same inputs, different output bytes (a different tessera build?)".into()]
    } else {
        changes
    }
}

/// The first epoch after the last published one before `epoch` (or from the start of the lake)
/// and before `epoch` that has sources but no outputs.
fn unpublished_prior(lake: &Lake, epoch: &Epoch) -> Result<Option<Epoch>> {
    let after = lake
        .epochs()?
        .into_iter()
        .rev()
        .find(|e| e < epoch)
        .map_or(i64::MIN, |p| p.end_ms());
    let earliest = lake
        .sources()?
        .iter()
        .filter_map(|m| match (m.min_time_ms, m.max_time_ms) {
            (Some(a), Some(b)) if b >= after && a < epoch.start_ms() => Some(a.max(after)),
            _ => None,
        })
        .min();
    Ok(earliest.and_then(Epoch::containing).filter(|e| e < epoch))
}
