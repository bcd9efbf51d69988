//! The epoch run, at the I/O edge, as named stages:
//!
//! ```text
//! sources ──(clean + cover, per source)──▶ visits ──(+ prior state)──▶ score ──▶ allocate ──▶ manifest
//! sources.rs                               visits.rs   prior.rs          score.rs   outputs.rs   outputs.rs
//! ```
//!
//! [`compute_to_dir`] writes every output file into a directory, [`compute`] into memory (for
//! verification and what-if runs), [`run`]/[`run_with`] into the lake (`publish.rs`: staging,
//! immutability of published epochs, no skipped epoch).
//!
//! Memory is bounded: at most a window of sources' results waits to be folded, the visits are held in memory up to
//! the lake's budget ([`Lake::with_max_visits`]) and spilled to range buckets beyond it, the prior
//! coverage state is read in cell order a batch at a time, and the big files are streamed to
//! disk. What grows with the week is per recipient (wallets, devices) and per source (the
//! manifest's input list).

mod history;
mod outputs;
mod places;
mod prior;
mod publish;
mod score;
mod sources;
pub mod staged;
mod trust;
mod visits;
pub(crate) mod wire;

pub use publish::{
    commit, prepare, published_layout, published_terms, published_trust_rules, run, run_with, trust_rules_of,
    RunOptions,
};

use crate::epoch::Epoch;
use crate::lake::{Error, Lake, Result};
use crate::manifest::{Counts, Status};

/// Where spilled visits go inside the output directory (removed before a run returns).
const SPILL_DIR: &str = ".spill";
use crate::policy::Policy;
use crate::registry::Registry;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Everything an epoch run depends on besides the lake's sources and prior state.
#[derive(Debug, Clone)]
pub struct EpochInputs {
    /// The epoch.
    pub epoch: Epoch,
    /// Pool in base units.
    pub pool: u128,
    /// Policy text exactly as stored beside the outputs (its SHA-256 goes in the manifest).
    pub policy_text: String,
    /// Device registry.
    pub registry: Registry,
    /// Only these sources (content hashes), when set: `epoch verify` recomputes a published
    /// epoch from exactly the sources its manifest lists, so data that arrived after
    /// publication (late data) never changes what it recomputes. `None`: every source in the
    /// lake overlapping the window.
    pub only_sources: Option<std::collections::BTreeSet<String>>,
    /// Regions, road cells and bounty areas, built from the policy's sources with
    /// [`crate::places::build()`] (empty for a policy without them). A policy naming places with
    /// none given is refused rather than paid as policy v1.
    pub places: crate::places::Places,
    /// `places.parquet` of `places` as this build encodes it ([`crate::tables::places_parquet`]),
    /// when already at hand: the CLI's places cache stores exactly these bytes, so a run with
    /// cached places writes them instead of encoding millions of rows again. `None`: encoded
    /// from `places` (what `epoch verify` always does). Bytes that are not the encoding of
    /// `places` would be published as its record: only the cache, keyed by the executable's
    /// hash and checked by SHA-256, sets this.
    pub places_parquet: Option<bytes::Bytes>,
    /// How the streamed Parquet outputs are encoded ([`crate::tables::Layout`]; recorded in the
    /// manifest): [`crate::tables::Layout::CURRENT`] for a new epoch, the published one when
    /// `epoch verify` recomputes an epoch or a run recomputes a published epoch (see
    /// [`run_with`]).
    pub layout: crate::tables::Layout,
    /// The trust rule set the epoch is judged by ([`crate::trust::policy::TRUST_RULES`] for a
    /// new epoch; recorded in the manifest): the published one when `epoch verify` recomputes
    /// an epoch or a run recomputes a published epoch, as for `layout`.
    pub trust_rules: u32,
}

impl EpochInputs {
    /// Inputs with the default policy.
    ///
    /// ```
    /// let reg = tessera::registry::Registry::parse(b"device_id,wallet\n", "r.csv").unwrap();
    /// let inputs = tessera::pipeline::EpochInputs::new("2026-W47".parse().unwrap(), 1000, reg);
    /// assert_eq!(inputs.policy_text, tessera::policy::Policy::default().to_toml());
    /// ```
    pub fn new(epoch: Epoch, pool: u128, registry: Registry) -> Self {
        EpochInputs {
            epoch,
            pool,
            policy_text: Policy::default().to_toml(),
            registry,
            only_sources: None,
            places: crate::places::Places::default(),
            places_parquet: None,
            layout: crate::tables::Layout::CURRENT,
            trust_rules: crate::trust::policy::TRUST_RULES,
        }
    }
}

/// One recipient in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct RecipientLine {
    /// Wallet.
    pub recipient: String,
    /// Amount, base units (decimal string: may exceed 2^53).
    pub amount: String,
    /// Points (decimal, 6 places).
    pub points: String,
    /// Devices.
    pub devices: u32,
    /// Cells with points.
    pub cells: u64,
}

/// What an epoch run did, for people (`demo`) and machines (`--json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Epoch.
    pub epoch: String,
    /// Window start, RFC 3339.
    pub window_start: String,
    /// Window end (exclusive), RFC 3339.
    pub window_end: String,
    /// Sources whose fixes overlap the window.
    pub sources: u64,
    /// Fixes inside the window.
    pub fixes_in: u64,
    /// Fixes accepted by every gate.
    pub fixes_accepted: u64,
    /// Rejected fixes by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Distinct cells covered.
    pub cells: u64,
    /// Cells never covered before this epoch.
    pub new_cells: u64,
    /// Visits scored.
    pub visits: u64,
    /// Recipients paid.
    pub recipients: u64,
    /// Pool, base units.
    pub pool: String,
    /// Allocated, base units (equals the pool unless there were no points).
    pub allocated: String,
    /// Total points.
    pub points_total: String,
    /// `allocated` or `no_points` (nothing allocated, the pool stays unspent).
    pub status: Status,
    /// Epoch whose coverage state this run started from.
    pub previous_state: Option<String>,
    /// Top recipients by amount.
    pub top: Vec<RecipientLine>,
    /// The `[emission]` rule that produced the pool (`None`: given to the run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool_rule: Option<String>,
    /// The per-wallet cap's effect, when one is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap: Option<crate::manifest::Cap>,
    /// Road length of the network, covered and fresh, and the place sources (with places).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub places: Option<crate::manifest::PlacesRecord>,
    /// Per region (the last, `region` null, outside every region), with places.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<RegionLine>,
    /// Bounties paying this epoch.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bounties: Vec<crate::rewards::bounty::Settlement>,
}

/// One region in the summary (as a row of `regions.parquet`).
#[derive(Debug, Clone, Serialize)]
pub struct RegionLine {
    /// Region (`None`: outside every region).
    pub region: Option<String>,
    /// Multiplier (decimal).
    pub weight: String,
    /// Cells covered.
    pub cells: u64,
    /// Cells covered for the first time.
    pub fresh_cells: u64,
    /// Road length in covered cells, km (decimal, 3 places).
    pub road_km: String,
    /// Road length in fresh cells, km.
    pub fresh_road_km: String,
    /// Devices with points.
    pub contributors: u64,
    /// Points (decimal, 6 places).
    pub points: String,
}

/// The complete outputs of an epoch, in memory.
#[derive(Debug, Clone)]
pub struct EpochOutputs {
    /// File name → bytes, as they go into `epochs/E/`.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Summary.
    pub summary: Summary,
}

/// Progress callback: (stage, done, total).
pub type Progress<'a> = &'a (dyn Fn(&str, u64, u64) + Sync);

/// No progress reporting.
///
/// ```
/// tessera::pipeline::no_progress("score", 1, 2); // does nothing
/// ```
pub fn no_progress(_: &str, _: u64, _: u64) {}

/// Compute every output of an epoch into memory without touching the lake (the files are
/// built in a temporary directory, then read).
///
/// # Errors
/// I/O and data errors naming the file; [`Error::Invalid`] for a policy that does not validate.
///
/// ```
/// # let d = tempfile::tempdir().unwrap();
/// # let lake = tessera::lake::Lake::open(d.path()).unwrap();
/// let reg = tessera::registry::Registry::parse(b"device_id,wallet\n", "r.csv").unwrap();
/// let inputs = tessera::pipeline::EpochInputs::new("2026-W47".parse().unwrap(), 1000, reg);
/// let out = tessera::pipeline::compute(&lake, &inputs, &tessera::pipeline::no_progress).unwrap();
/// assert!(out.files.contains_key("manifest.json"));
/// assert!(lake.epochs().unwrap().is_empty()); // nothing written to the lake
/// ```
pub fn compute(lake: &Lake, inputs: &EpochInputs, progress: Progress) -> Result<EpochOutputs> {
    let tmp = tempfile::Builder::new()
        .prefix("tessera-epoch-")
        .tempdir()
        .map_err(|source| Error::Io {
            path: std::env::temp_dir().display().to_string(),
            source,
        })?;
    let run = compute_to_dir(lake, inputs, tmp.path(), progress)?;
    let mut files = BTreeMap::new();
    for name in run.sha256.keys() {
        let p = tmp.path().join(name);
        let bytes = std::fs::read(&p).map_err(|source| Error::Io {
            path: p.display().to_string(),
            source,
        })?;
        files.insert(name.clone(), bytes);
    }
    Ok(EpochOutputs {
        files,
        summary: run.summary,
    })
}

/// What [`compute_to_dir`] and [`run`] produced: the summary and each file's SHA-256.
#[derive(Debug, Clone)]
pub struct EpochRun {
    /// Summary.
    pub summary: Summary,
    /// File name → SHA-256 (hex) of every output file, `manifest.json` included.
    pub sha256: BTreeMap<String, String>,
    /// True when the epoch was already published with exactly these bytes (nothing written).
    pub unchanged: bool,
}

/// Compute every output of an epoch and write the files into `dir` (which must exist and is
/// used as scratch space for spilled visits, removed before returning). Nothing else is written.
/// Memory stays within the lake's visit budget ([`Lake::with_max_visits`]) plus what is kept
/// per recipient; the big files are streamed.
///
/// # Errors
/// As [`compute`].
///
/// ```
/// // see `compute`, which calls it with a temporary directory
/// ```
pub fn compute_to_dir(lake: &Lake, inputs: &EpochInputs, dir: &Path, progress: Progress) -> Result<EpochRun> {
    let scratch = dir.join(SPILL_DIR);
    let result = compute_inner(lake, inputs, dir, progress);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// What every stage of an epoch run needs, decided once before any source is read (on a Spark
/// driver and on each of its workers alike).
struct Plan {
    pub policy: Policy,
    pub k: crate::policy::Kernels,
    pub pool_rule: Option<String>,
    pub selected: Vec<crate::lake::SourceMeta>,
    pub devices: Vec<String>,
    pub wallet_of: Vec<String>,
    /// The epoch the prior coverage state comes from, and that file's SHA-256.
    pub prev: Option<(Epoch, String)>,
    /// (index into `policy.bounties`, min_age_epochs) of the bounties paying this epoch.
    pub active: Vec<(usize, u32)>,
    /// The road cells as a [`crate::places::CellSet`], when the off-road detector runs (trust
    /// on and a road network configured).
    pub road_cells: Option<crate::places::CellSet>,
}

impl Plan {
    fn new(lake: &Lake, inputs: &EpochInputs) -> Result<Plan> {
        let policy = Policy::from_toml_str(&inputs.policy_text)?;
        let mut k = policy.kernels()?;
        let given = crate::trust::policy::names_min_anchors(&inputs.policy_text);
        k.trust = k.trust.map(|mut t| {
            t.min_anchors_given = given;
            t.under_rules(inputs.trust_rules)
        });
        let e = inputs.epoch;
        let pool_rule = check_pool(&policy, inputs)?;
        check_places(&policy, &inputs.places)?;
        let selected = sources::select(lake, &e, inputs.only_sources.as_ref())?;
        let devices = sources::devices(&selected);
        let wallet_of: Vec<String> = devices
            .iter()
            .map(|d| inputs.registry.wallet(d).unwrap_or_default().to_string())
            .collect();
        let prev = prior::prior_epoch(lake, &e)?;
        let active = policy
            .bounties
            .iter()
            .enumerate()
            .filter(|(_, b)| crate::rewards::bounty::active(b, e))
            .map(|(i, b)| (i, b.min_age_epochs))
            .collect();
        let road_cells = match (&k.trust, k.off_road, &inputs.places.roads) {
            (Some(_), Some(_), Some(roads)) => Some(crate::places::CellSet::new(roads.iter().map(|r| r.0))),
            _ => None,
        };
        Ok(Plan {
            policy,
            k,
            pool_rule,
            selected,
            devices,
            wallet_of,
            prev,
            active,
            road_cells,
        })
    }

    /// The rules scoring runs under.
    fn score_context<'a>(&'a self, inputs: &'a EpochInputs, judged: Option<&'a trust::Judged>) -> score::Context<'a> {
        score::Context {
            devices: &self.devices,
            wallet_of: &self.wallet_of,
            k: &self.k,
            epoch: inputs.epoch.index(),
            trust: judged,
            places: &inputs.places,
            active_bounties: self.active.clone(),
            layout: inputs.layout,
        }
    }

    /// Stage 2 (trust on): judge the sources' findings and traces; the verdicts, and what the
    /// stage's files are written from ([`Plan::write_trust_files`]).
    fn judge(
        &self,
        lake: &Lake,
        epoch: Epoch,
        per_source: Vec<trust::SourceTrust>,
        dir: &Path,
    ) -> Result<Option<(trust::Judged, trust::TrustFiles)>> {
        match self.trust_context(lake, epoch, dir) {
            None => Ok(None),
            Some(cx) => trust::judge(&cx, per_source).map(Some),
        }
    }

    /// Write the judged sources' `flags.parquet`, `trust.parquet` and `fingerprints.parquet`
    /// into `dir`, each into `outputs` with its SHA-256.
    fn write_trust_files(
        &self,
        lake: &Lake,
        epoch: Epoch,
        dir: &Path,
        files: trust::TrustFiles,
        outputs: &mut BTreeMap<String, String>,
    ) -> Result<()> {
        let cx = self
            .trust_context(lake, epoch, dir)
            .expect("trust files come from a judge with trust on");
        outputs.extend(files.write(&cx)?);
        Ok(())
    }

    /// What the trust stage reads (`None`: trust off).
    fn trust_context<'a>(&'a self, lake: &'a Lake, epoch: Epoch, dir: &'a Path) -> Option<trust::Context<'a>> {
        Some(trust::Context {
            lake,
            epoch,
            selected: &self.selected,
            devices: &self.devices,
            wallet_of: &self.wallet_of,
            k: self.k.trust.as_ref()?,
            dir,
        })
    }
}

/// What the sources stage counted, for the manifest.
struct SourceCounts {
    pub fixes_in: u64,
    pub accepted: u64,
    pub rejected: BTreeMap<String, u64>,
    pub inputs: Vec<crate::manifest::Input>,
}

fn compute_inner(lake: &Lake, inputs: &EpochInputs, dir: &Path, progress: Progress) -> Result<EpochRun> {
    let plan = Plan::new(lake, inputs)?;
    let e = inputs.epoch;

    // 1. Sources → cleaned fixes → visits (spilled past the budget), rejections streamed.
    let covered = sources::cover_all(lake, &plan, inputs, dir, progress)?;
    let mut outputs: BTreeMap<String, String> = BTreeMap::new();

    // 2. Trust: one timeline per device, replays and co-travel, reputation; flags written.
    // `places.parquet` depends on the places only, and the last row groups of
    // `rejections.parquet` on stage 1 only: each is encoded on a thread of its own while trust
    // and scoring, which leave part of the cores idle, run.
    std::thread::scope(|s| {
        let rejections = s.spawn(|| sources::close_rejections(dir, covered.rejections));
        let cells =
            s.spawn(|| places::write_cells(dir, &inputs.places, inputs.places_parquet.as_deref(), &plan.policy));
        let trust_on = plan.k.trust.is_some();
        if trust_on {
            progress("trust", 0, 1);
        }
        // The visits held in memory are sorted for scoring meanwhile (the judge leaves a core
        // idle at times; the verdicts do not change the visits, only how they score).
        let mut store = covered.store;
        let (judged, ()) = rayon::join(|| plan.judge(lake, e, covered.trust, dir), || store.sort_in_memory());
        let (judged, files) = judged?.unzip();
        if trust_on {
            progress("trust", 1, 1);
        }
        // Nothing scored depends on the trust stage's files: written while the visits are scored.
        let trust_files = s.spawn(|| {
            let mut written = BTreeMap::new();
            if let Some(files) = files {
                plan.write_trust_files(lake, e, dir, files, &mut written)?;
            }
            Ok::<_, Error>(written)
        });

        // 3. Visits scored against the prior coverage state; explain and coverage streamed.
        progress("score", 0, 1);
        let prior = prior::cursor(lake, plan.prev.as_ref())?;
        let cx = plan.score_context(inputs, judged.as_ref());
        let totals = score::score_all(&cx, store, prior, dir, lake.score_rows(), progress)?;
        progress("score", 1, 1);
        let counts = SourceCounts {
            fixes_in: covered.fixes_in,
            accepted: covered.accepted,
            rejected: covered.rejected,
            inputs: covered.inputs,
        };
        let cells = cells.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?;
        let rejections_sha = rejections.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?;
        outputs.insert("rejections.parquet".into(), rejections_sha);
        outputs.extend(trust_files.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?);
        conclude(lake, inputs, &plan, counts, totals, outputs, cells, dir)
    })
}

/// Stages 4 and 5, after scoring: the pool and the bounties allocated over the points; rewards,
/// merkle, policy, registry and the places written (`places.parquet` unless `cells` is its
/// SHA-256, already written); the manifest naming every input and output.
#[allow(clippy::too_many_arguments)]
fn conclude(
    lake: &Lake,
    inputs: &EpochInputs,
    plan: &Plan,
    counts: SourceCounts,
    totals: score::Totals,
    mut outputs: BTreeMap<String, String>,
    cells: Option<String>,
    dir: &Path,
) -> Result<EpochRun> {
    let policy = &plan.policy;
    outputs.insert("explain.parquet".into(), totals.explain_sha.clone());
    outputs.insert("coverage.parquet".into(), totals.coverage_sha.clone());
    let carried = prior::bounty_carry(lake, &inputs.epoch, plan.prev.as_ref())?;
    let bounties: outputs::BountyInputs = plan
        .active
        .iter()
        .zip(&totals.places.bounty_points)
        .map(|((i, _), pts)| {
            let b = &policy.bounties[*i];
            let carried_in = if b.unclaimed == crate::places::policy::Unclaimed::Rollover {
                carried.get(&b.id).copied().unwrap_or(0)
            } else {
                0
            };
            (b, carried_in, pts.iter().map(|(w, p)| (w.to_string(), *p)).collect())
        })
        .collect();
    let alloc = outputs::allocate_and_write(dir, inputs, &plan.k, &totals.per, bounties, &mut outputs)?;
    let (places, regions) = places::write(dir, &inputs.places, policy, &totals.places, cells, &mut outputs)?;

    let manifest_counts = Counts {
        sources: plan.selected.len() as u64,
        fixes_in: counts.fixes_in,
        fixes_accepted: counts.accepted,
        rejected: counts.rejected,
        visits: totals.visits,
        cells: totals.cells,
        new_cells: totals.new_cells,
    };
    let extra = outputs::Extra {
        places,
        pool_rule: plan.pool_rule.clone(),
    };
    let manifest = outputs::manifest(
        inputs,
        &alloc,
        manifest_counts,
        plan.prev.clone(),
        counts.inputs,
        &outputs,
        extra,
    );
    outputs.insert(
        "manifest.json".into(),
        outputs::put(dir, "manifest.json", &manifest.to_bytes())?,
    );
    let mut summary = outputs::summary(&manifest, &alloc.shares, &alloc.totals, &totals.per);
    summary.regions = regions;
    Ok(EpochRun {
        summary,
        sha256: outputs,
        unchanged: false,
    })
}

/// The pool must match the policy's `[emission]` schedule when it has one; its rule's name.
fn check_pool(policy: &Policy, inputs: &EpochInputs) -> Result<Option<String>> {
    let Some(em) = &policy.emission else {
        return Ok(None);
    };
    let want = em
        .pool_for(inputs.epoch)
        .map_err(|m| Error::Invalid(format!("policy [emission]: {m}")))?;
    if want != inputs.pool {
        return Err(Error::Invalid(format!(
            "pool {} disagrees with the policy's emission schedule ({}), which gives {want} for {}",
            inputs.pool,
            em.rule.as_str(),
            inputs.epoch
        )));
    }
    Ok(Some(em.rule.as_str().to_string()))
}

/// Places must be given when the policy names them (else the epoch would pay as policy v1).
fn check_places(policy: &Policy, places: &crate::places::Places) -> Result<()> {
    let named = !policy.regions.is_empty() || policy.roads.is_some() || !policy.bounties.is_empty();
    let given = !places.is_empty() || !places.sources.is_empty();
    let fits = places.roads.is_some() == policy.roads.is_some()
        && places.bounties.len() == policy.bounties.len()
        && places.bounties.iter().zip(&policy.bounties).all(|(a, b)| a.id == b.id);
    if named && !(given && fits) || !named && given {
        return Err(Error::Invalid(
            "the epoch's places (regions, roads, bounty areas) do not match its policy: build them from the \
             policy with tessera::places::build (the CLI does)"
                .into(),
        ));
    }
    Ok(())
}
