//! The epoch in stages, for an engine that runs them in other processes and on other machines
//! (Spark: `python -m tessera.spark`). Every stage calls the same kernels and writers as
//! [`super::compute_to_dir`], so a staged run writes the same bytes:
//!
//! ```text
//! driver   StagedEpoch::plan        spec.json (+ places.parquet) in the scratch directory
//! workers  cover_source(i)          → the source's visits (to the engine) + sources/i.json
//! driver   fold_sources             rejections.parquet, trust files, judged.json
//! workers  prior_rows(row group)    → the prior coverage state (to the engine)
//! workers  score_bucket(b, v, p)    → per-recipient points (to the engine) + buckets/b.part
//! driver   finish                   explain/coverage in bucket order, allocation, merkle, manifest
//! ```
//!
//! A bucket is any range of cells that the engine keeps together and orders: `cell >> shift`
//! for a fixed shift keeps the cells' order (H3 indexes of one resolution sort by their parent
//! cells), so folding the buckets in ascending order is folding every cell in order, as the
//! CLI does. The scratch directory must be shared by the driver and the workers (the lake's
//! file system); its files are written atomically, so a retried task rewrites the same bytes.

use super::score::{Part, PartContext, Scorer};
use super::sources::{self, SourceFold, SourcePart};
use super::trust::Judged;
use super::{wire, EpochInputs, EpochRun, Plan, SourceCounts};
use crate::epoch::Epoch;
use crate::lake::{write_atomic, Error, Lake, Result};
use crate::novelty::freshness::CellState;
use crate::novelty::VisitRow;
use crate::registry::Registry;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// What a worker needs to rebuild the driver's plan (`spec.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Spec {
    lake: PathBuf,
    epoch: String,
    pool: String,
    policy: String,
    registry: String,
    /// The driver's selection of sources, in order.
    sources: Vec<String>,
    /// Whether `places.parquet` holds the places.
    places: bool,
    /// The outputs' [`crate::tables::Layout`] number.
    layout: u32,
    /// The trust rule set ([`crate::trust::policy::TRUST_RULES`]).
    trust_rules: u32,
}

/// One recipient's points from a range of cells (a worker's answer to the engine, which sums
/// them over the ranges as integers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientPoints {
    /// Points, millionths.
    pub points: u128,
    /// Distinct cells in which the recipient earned points.
    pub cells: u64,
    /// Device indexes (into [`StagedEpoch::devices`]) with scored visits, sorted.
    pub devices: Vec<u32>,
}

/// The sources folded on the driver, waiting for the scored buckets.
pub struct SourcesDone {
    counts: SourceCounts,
    outputs: BTreeMap<String, String>,
    judged: Option<Judged>,
}

/// An epoch run in stages (see the module documentation), on the driver or on a worker.
pub struct StagedEpoch {
    lake: Lake,
    inputs: EpochInputs,
    plan: Plan,
    scratch: Scratch,
    judged: OnceLock<Option<Judged>>,
}

/// The scratch space of a staged run, shared by the driver and the workers: every intermediate
/// file of the run is put, got and listed through these four methods (a directory on a shared
/// file system today; an object store would be another implementation of them).
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// A new scratch space with its folders.
    fn create(dir: &Path) -> Result<Scratch> {
        for d in ["sources", "buckets"] {
            let p = dir.join(d);
            std::fs::create_dir_all(&p).map_err(io(&p))?;
        }
        Ok(Scratch { dir: dir.to_path_buf() })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Write `name` atomically (a retried task rewrites the same bytes).
    fn put(&self, name: &str, bytes: &[u8]) -> Result<()> {
        write_atomic(&self.path(name), bytes)
    }

    fn get(&self, name: &str) -> Result<Vec<u8>> {
        read(&self.path(name))
    }

    /// The files in folder `sub` ending in `suffix`, in name order.
    fn list(&self, sub: &str, suffix: &str) -> Result<Vec<String>> {
        let d = self.path(sub);
        let mut names: Vec<String> = std::fs::read_dir(&d)
            .map_err(io(&d))?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
            .filter(|n| n.ends_with(suffix) && !n.starts_with('.'))
            .map(|n| format!("{sub}/{n}"))
            .collect();
        names.sort();
        Ok(names)
    }

    fn remove(&self) -> Result<()> {
        std::fs::remove_dir_all(&self.dir).map_err(io(&self.dir))
    }
}

fn io(p: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: p.display().to_string(),
        source,
    }
}

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(io(p))
}

fn data(p: &Path, message: impl std::fmt::Display) -> Error {
    Error::Data {
        path: p.display().to_string(),
        message: message.to_string(),
    }
}

impl StagedEpoch {
    /// Driver: plan the epoch (the checks of [`super::compute`]: policy, pool, places, the
    /// selection of sources) and write what workers need into `scratch` (created).
    ///
    /// # Errors
    /// As [`super::compute`]; I/O errors naming the scratch file.
    ///
    /// ```
    /// # let d = tempfile::tempdir().unwrap();
    /// # let lake = tessera::lake::Lake::open(d.path().join("lake")).unwrap();
    /// use tessera::pipeline::{staged::StagedEpoch, EpochInputs};
    /// let reg = tessera::registry::Registry::parse(b"device_id,wallet\n", "r.csv").unwrap();
    /// let inputs = EpochInputs::new("2026-W47".parse().unwrap(), 1000, reg);
    /// let s = StagedEpoch::plan(lake, inputs, &d.path().join("scratch")).unwrap();
    /// assert_eq!(s.sources(), 0);
    /// let w = StagedEpoch::open(&d.path().join("scratch")).unwrap(); // on a worker
    /// assert_eq!(w.devices(), s.devices());
    /// ```
    pub fn plan(lake: Lake, inputs: EpochInputs, scratch: &Path) -> Result<StagedEpoch> {
        let plan = Plan::new(&lake, &inputs)?;
        let pol = &plan.policy;
        let has_places = !pol.regions.is_empty() || pol.roads.is_some() || !pol.bounties.is_empty();
        let scratch = Scratch::create(scratch)?;
        if has_places {
            let bytes = crate::tables::places_parquet(&inputs.places)
                .map_err(|e| super::outputs::pq_error("places.parquet", e))?;
            scratch.put("places.parquet", &bytes)?;
        }
        let spec = Spec {
            lake: lake.root().to_path_buf(),
            epoch: inputs.epoch.to_string(),
            pool: inputs.pool.to_string(),
            policy: inputs.policy_text.clone(),
            registry: inputs.registry.to_csv(),
            sources: plan.selected.iter().map(|m| m.hash.clone()).collect(),
            places: has_places,
            layout: inputs.layout.number(),
            trust_rules: inputs.trust_rules,
        };
        let json = serde_json::to_vec(&spec).map_err(|e| Error::Invalid(e.to_string()))?;
        scratch.put("spec.json", &json)?;
        Ok(StagedEpoch::new(lake, inputs, plan, scratch))
    }

    /// Worker: the driver's plan, from its scratch directory.
    ///
    /// # Errors
    /// I/O and data errors naming the scratch file; the plan's errors (a source gone from the
    /// lake since the driver planned is an error, not a different selection).
    ///
    /// ```
    /// // see `StagedEpoch::plan`
    /// ```
    pub fn open(scratch: &Path) -> Result<StagedEpoch> {
        let scratch = Scratch {
            dir: scratch.to_path_buf(),
        };
        let p = scratch.path("spec.json");
        let spec: Spec = serde_json::from_slice(&scratch.get("spec.json")?).map_err(|e| data(&p, e))?;
        let epoch: Epoch = spec.epoch.parse().map_err(|e| data(&p, e))?;
        let pool: u128 = spec.pool.parse().map_err(|e| data(&p, e))?;
        let registry = Registry::parse(spec.registry.as_bytes(), "spec.json registry").map_err(|e| data(&p, e))?;
        let policy = crate::policy::Policy::from_toml_str(&spec.policy)?;
        let mut places = crate::places::Places::default();
        if spec.places {
            let pp = scratch.path("places.parquet");
            let bytes = bytes::Bytes::from(scratch.get("places.parquet")?);
            let ids: Vec<String> = policy.bounties.iter().map(|b| b.id.clone()).collect();
            places =
                crate::tables::places_from_parquet(&bytes, policy.roads.is_some(), &ids).map_err(|m| data(&pp, m))?;
            // The driver checked the places against the policy; a worker only scores with them.
            places.sources = vec![crate::places::PlaceSource {
                role: "staged".into(),
                path: pp.display().to_string(),
                sha256: String::new(),
            }];
        }
        let want: BTreeSet<String> = spec.sources.iter().cloned().collect();
        let layout = crate::tables::Layout::from_number(spec.layout)
            .ok_or_else(|| data(&p, format!("unknown layout {}", spec.layout)))?;
        let inputs = EpochInputs {
            epoch,
            pool,
            policy_text: spec.policy,
            registry,
            only_sources: Some(want),
            places,
            places_parquet: None,
            layout,
            trust_rules: spec.trust_rules,
        };
        let lake = Lake::attach(&spec.lake);
        let plan = Plan::new(&lake, &inputs)?;
        let got: Vec<&str> = plan.selected.iter().map(|m| m.hash.as_str()).collect();
        if got != spec.sources.iter().map(String::as_str).collect::<Vec<_>>() {
            return Err(data(&p, "the lake's sources differ from the driver's selection"));
        }
        Ok(StagedEpoch::new(lake, inputs, plan, scratch))
    }

    fn new(lake: Lake, inputs: EpochInputs, plan: Plan, scratch: Scratch) -> StagedEpoch {
        StagedEpoch {
            lake,
            inputs,
            plan,
            scratch,
            judged: OnceLock::new(),
        }
    }

    /// The epoch.
    ///
    /// ```
    /// // see `StagedEpoch::plan`
    /// ```
    pub fn epoch(&self) -> Epoch {
        self.inputs.epoch
    }

    /// Sources selected (stage 1 runs `cover_source(0..n)`).
    ///
    /// ```
    /// // see `StagedEpoch::plan`
    /// ```
    pub fn sources(&self) -> usize {
        self.plan.selected.len()
    }

    /// Devices of the selected sources, by index.
    ///
    /// ```
    /// // see `StagedEpoch::plan`
    /// ```
    pub fn devices(&self) -> &[String] {
        &self.plan.devices
    }

    /// Each device's wallet (empty: unregistered), by device index.
    ///
    /// ```
    /// // see `StagedEpoch::plan`
    /// ```
    pub fn wallets(&self) -> &[String] {
        &self.plan.wallet_of
    }

    /// Stage 1 on a worker: clean and cover source `i`; its visits sorted by (cell, device), one
    /// per key. What the driver folds is written to `sources/<i>.json`.
    ///
    /// # Errors
    /// Reading the source; writing the scratch file; `i` out of range.
    ///
    /// ```
    /// // see python/tessera/spark.py
    /// ```
    pub fn cover_source(&self, i: usize) -> Result<Vec<VisitRow>> {
        let m = self
            .plan
            .selected
            .get(i)
            .ok_or_else(|| Error::Invalid(format!("source {i} of {}", self.sources())))?;
        let d = self.plan.devices.binary_search(&m.device).map_or(0, |x| x as u32);
        let r = sources::process_source(
            &self.lake,
            m,
            d,
            &self.inputs,
            &self.plan.k,
            self.plan.road_cells.as_ref(),
        )?;
        let json = serde_json::to_vec(&r.part).map_err(|e| Error::Invalid(e.to_string()))?;
        self.scratch.put(&source_file(i), &json)?;
        let mut rows: Vec<VisitRow> = r
            .visits
            .into_iter()
            .map(|((cell, device), visit)| VisitRow { cell, device, visit })
            .collect();
        rows.sort_unstable_by_key(|r| (r.cell, r.device));
        Ok(rows)
    }

    /// Stage 2 on the driver, once every source is covered: fold the sources' parts in order
    /// (`rejections.parquet` into `dir`), judge trust (its files into `dir`) and write the
    /// verdicts workers score with (`judged.json`).
    ///
    /// # Errors
    /// A missing or unreadable part names its file; the writers' errors.
    ///
    /// ```
    /// // see python/tessera/spark.py
    /// ```
    pub fn fold_sources(&self, dir: &Path) -> Result<SourcesDone> {
        let mut fold = SourceFold::new(dir, self.inputs.layout)?;
        for (i, m) in self.plan.selected.iter().enumerate() {
            let name = source_file(i);
            let part: SourcePart =
                serde_json::from_slice(&self.scratch.get(&name)?).map_err(|e| data(&self.scratch.path(&name), e))?;
            fold.add(m, part)?;
        }
        let store = super::visits::VisitStore {
            rows: Vec::new(),
            max: 0,
            spill: None,
            dir: dir.to_path_buf(),
            sorted: false,
        };
        let covered = fold.finish(store)?;
        let mut outputs = BTreeMap::new();
        outputs.insert(
            "rejections.parquet".to_string(),
            super::sources::close_rejections(dir, covered.rejections)?,
        );
        let judged = match self.plan.judge(&self.lake, self.inputs.epoch, covered.trust, dir)? {
            None => None,
            Some((judged, files)) => {
                self.plan
                    .write_trust_files(&self.lake, self.inputs.epoch, dir, files, &mut outputs)?;
                Some(judged)
            }
        };
        let json = serde_json::to_vec(&judged).map_err(|e| Error::Invalid(e.to_string()))?;
        self.scratch.put("judged.json", &json)?;
        Ok(SourcesDone {
            counts: SourceCounts {
                fixes_in: covered.fixes_in,
                accepted: covered.accepted,
                rejected: covered.rejected,
                inputs: covered.inputs,
            },
            outputs,
            judged,
        })
    }

    /// Row groups of the prior coverage state (0 without a prior epoch).
    ///
    /// # Errors
    /// Opening the prior state.
    ///
    /// ```
    /// // see python/tessera/spark.py
    /// ```
    pub fn prior_row_groups(&self) -> Result<usize> {
        let Some((prev, _)) = &self.plan.prev else {
            return Ok(0);
        };
        let p = super::prior::coverage_path(&self.lake, prev);
        let f = std::fs::File::open(&p).map_err(io(&p))?;
        let r = parquet::file::reader::SerializedFileReader::new(f).map_err(|e| data(&p, e))?;
        Ok(parquet::file::reader::FileReader::metadata(&r).num_row_groups())
    }

    /// The prior coverage state's rows in row group `rg`, in cell order.
    ///
    /// # Errors
    /// Reading the prior state; `rg` out of range.
    ///
    /// ```
    /// // see python/tessera/spark.py
    /// ```
    pub fn prior_rows(&self, rg: usize) -> Result<Vec<(u64, CellState)>> {
        let Some((prev, _)) = &self.plan.prev else {
            return Ok(Vec::new());
        };
        let p = super::prior::coverage_path(&self.lake, prev);
        let f = std::fs::File::open(&p).map_err(io(&p))?;
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .and_then(|b| b.with_row_groups(vec![rg]).build())
            .map_err(|e| data(&p, e))?;
        let mut out = Vec::new();
        for b in reader {
            let b = b.map_err(|e| data(&p, e))?;
            out.extend(crate::tables::coverage_rows(&b).map_err(|m| data(&p, m))?);
        }
        Ok(out)
    }

    fn verdicts(&self) -> Result<Option<&Judged>> {
        if let Some(j) = self.judged.get() {
            return Ok(j.as_ref());
        }
        let bytes = self.scratch.get("judged.json")?;
        let j: Option<Judged> =
            serde_json::from_slice(&bytes).map_err(|e| data(&self.scratch.path("judged.json"), e))?;
        Ok(self.judged.get_or_init(|| j).as_ref())
    }

    /// Stage 3 on a worker: score one bucket's visits (any order; visits of one device in one
    /// cell from several sources are merged) against the bucket's prior state; the scored part
    /// is written to `buckets/<bucket>.part` for the driver, the per-recipient points returned
    /// for the engine to sum.
    ///
    /// # Errors
    /// The verdicts file; writing the part.
    ///
    /// ```
    /// // see python/tessera/spark.py
    /// ```
    pub fn score_bucket(
        &self,
        bucket: u64,
        mut visits: Vec<VisitRow>,
        mut prior: Vec<(u64, CellState)>,
    ) -> Result<BTreeMap<String, RecipientPoints>> {
        visits.sort_unstable_by_key(|r| (r.cell, r.device, r.visit.first_ms, r.visit.last_ms));
        let mut rows: Vec<VisitRow> = Vec::with_capacity(visits.len());
        for v in visits {
            match rows.last_mut() {
                Some(l) if (l.cell, l.device) == (v.cell, v.device) => l.visit = l.visit.merge(v.visit),
                _ => rows.push(v),
            }
        }
        prior.sort_unstable_by_key(|p| p.0);
        let cx = PartContext {
            devices: &self.plan.devices,
            trust: self.verdicts()?,
            k: &self.plan.k,
            epoch: self.inputs.epoch.index(),
            places: &self.inputs.places,
        };
        let part = super::score::score_part(&cx, &rows, &prior);
        let mut per: BTreeMap<String, RecipientPoints> = BTreeMap::new();
        let mut last: BTreeMap<&str, u64> = BTreeMap::new();
        for s in &part.scored {
            let w = self.plan.wallet_of[s.row.device as usize].as_str();
            let e = per.entry(w.to_string()).or_default();
            e.points += u128::from(s.points);
            if let Err(i) = e.devices.binary_search(&s.row.device) {
                e.devices.insert(i, s.row.device);
            }
            if s.points > 0 && last.get(w) != Some(&s.row.cell) {
                e.cells += 1;
                last.insert(w, s.row.cell);
            }
        }
        self.scratch.put(&bucket_file(bucket), &wire::encode_part(&part))?;
        Ok(per)
    }

    /// Stage 4 on the driver: fold the scored buckets in ascending order (`explain.parquet`,
    /// `coverage.parquet` into `dir`), check the engine's per-recipient sums against that fold,
    /// allocate, and write the rewards, merkle distribution, places and manifest, exactly as
    /// [`super::compute_to_dir`] does; then remove the scratch directory.
    ///
    /// # Errors
    /// A bucket file that cannot be read; [`Error::Invalid`] when the engine's sums disagree
    /// with the scored rows (nothing is paid from numbers that do not add up); the writers'.
    ///
    /// ```
    /// // see python/tessera/spark.py
    /// ```
    pub fn finish(
        &self,
        done: SourcesDone,
        dir: &Path,
        engine: &BTreeMap<String, RecipientPoints>,
    ) -> Result<EpochRun> {
        let SourcesDone {
            counts,
            outputs,
            judged,
        } = done;
        let cx = self.plan.score_context(&self.inputs, judged.as_ref());
        let mut scorer = Scorer::new(&cx, super::prior::PriorCursor::empty(), dir, false)?;
        // Fixed-width hex names: name order is bucket order.
        for n in self.scratch.list("buckets", ".part")? {
            let part: Part = wire::decode_part(&self.scratch.get(&n)?).map_err(|m| data(&self.scratch.path(&n), m))?;
            scorer.absorb(part)?;
        }
        let totals = scorer.finish(dir)?;
        check_engine(&totals.per, engine)?;
        let run = super::conclude(&self.lake, &self.inputs, &self.plan, counts, totals, outputs, None, dir)?;
        self.scratch.remove()?;
        Ok(run)
    }
}

fn source_file(i: usize) -> String {
    format!("sources/{i:08}.json")
}

fn bucket_file(bucket: u64) -> String {
    format!("buckets/{bucket:016x}.part")
}

/// The engine's per-recipient sums must equal the fold of the scored rows the files hold.
fn check_engine(
    per: &BTreeMap<&str, super::score::PerRecipient>,
    engine: &BTreeMap<String, RecipientPoints>,
) -> Result<()> {
    let mismatch = |w: &str, what: String| {
        Err(Error::Invalid(format!(
            "the engine's sums disagree with the scored rows for recipient {w:?}: {what}"
        )))
    };
    if per.len() != engine.len() {
        return mismatch(
            "*",
            format!("{} recipients, the engine has {}", per.len(), engine.len()),
        );
    }
    for (w, v) in per {
        let Some(e) = engine.get(*w) else {
            return mismatch(w, "missing".into());
        };
        let devices: Vec<u32> = v.devices.iter().copied().collect();
        if (e.points, e.cells, &e.devices) != (v.points, v.cells, &devices) {
            return mismatch(
                w,
                format!(
                    "points {} vs {}, cells {} vs {}, devices {:?} vs {:?}",
                    e.points, v.points, e.cells, v.cells, e.devices, devices
                ),
            );
        }
    }
    Ok(())
}
