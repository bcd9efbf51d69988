//! Auditing published epochs: read them back, recompute and compare byte for byte (`verify`),
//! claims with proofs (`proof`), the story behind an amount (`explain`), and what-if policy
//! changes (`diff`). I/O edge; the comparisons are plain functions over decoded rows.

use crate::epoch::Epoch;
use crate::lake::{sha256_file, Error, Lake, Result};
use crate::manifest::Manifest;
use crate::pipeline::{self, EpochInputs, Progress};
use crate::registry::Registry;
use crate::tables;
use arrow_array::{Array, Decimal128Array, ListArray, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

/// A temporary directory for a recomputation (removed when dropped).
fn scratch_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("tessera-verify-")
        .tempdir()
        .map_err(|source| Error::Io {
            path: std::env::temp_dir().display().to_string(),
            source,
        })
}

fn data(path: &Path, message: impl Into<String>) -> Error {
    Error::Data {
        path: path.display().to_string(),
        message: message.into(),
    }
}

fn batches(path: &Path) -> Result<Vec<RecordBatch>> {
    tables::from_parquet(read(path)?.into()).map_err(|e| data(path, e.to_string()))
}

fn column<'a, T: 'static>(b: &'a RecordBatch, name: &str, path: &Path) -> Result<&'a T> {
    crate::tables::column(b, name).map_err(|e| data(path, e))
}

/// A published manifest, parsed.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read, [`Error::Data`] when it is not a manifest.
///
/// ```no_run
/// let m = tessera::audit::read_manifest("lake/epochs/2026-W47/manifest.json".as_ref()).unwrap();
/// println!("{} paid {} of {}", m.epoch, m.allocated, m.pool);
/// ```
pub fn read_manifest(path: &Path) -> Result<Manifest> {
    Manifest::from_slice(&read(path)?).map_err(|e| data(path, e.to_string()))
}

/// The inputs a published epoch was computed with: its stored policy and registry and the pool
/// of its manifest.
///
/// # Errors
/// [`Error::Io`]/[`Error::Data`] naming `policy.toml`, `registry.csv` or the manifest when one cannot be read or parsed.
///
/// ```
/// # let d = tempfile::tempdir().unwrap();
/// # let lake = tessera::lake::Lake::open(d.path()).unwrap();
/// # let fleet = tessera::simulate::simulate(&tessera::simulate::SimConfig { drivers: 4, epochs: 1, trips: 1, minutes: 2, ..Default::default() });
/// # for f in &fleet.files { lake.ingest(&f.device, &f.name, &f.bytes).unwrap(); }
/// # let reg = tessera::registry::Registry::parse(fleet.registry_csv.as_bytes(), "r").unwrap();
/// let e: tessera::epoch::Epoch = "2026-W46".parse().unwrap();
/// tessera::pipeline::run(&lake, &tessera::pipeline::EpochInputs::new(e, 1000, reg), &tessera::pipeline::no_progress).unwrap();
/// let m = tessera::audit::read_manifest(&lake.epoch_dir(&e).join("manifest.json")).unwrap();
/// assert_eq!(tessera::audit::published_inputs(&lake, &e, &m).unwrap().pool, 1000);
/// ```
pub fn published_inputs(lake: &Lake, epoch: &Epoch, manifest: &Manifest) -> Result<EpochInputs> {
    let dir = lake.epoch_dir(epoch);
    let PublishedPolicy {
        text: policy_text,
        places,
        ..
    } = published_policy(lake, epoch, manifest)?;
    let reg_path = dir.join("registry.csv");
    let registry = Registry::parse(&read(&reg_path)?, &reg_path.display().to_string())
        .map_err(|e| data(&reg_path, e.to_string()))?;
    let mpath = dir.join("manifest.json");
    let pool = manifest.pool_units().map_err(|e| data(&mpath, e.to_string()))?;
    let layout = crate::tables::Layout::of_manifest(manifest.layout).map_err(|m| data(&mpath, m))?;
    let trust_rules = pipeline::trust_rules_of(manifest).map_err(|m| data(&mpath, m))?;
    Ok(EpochInputs {
        epoch: *epoch,
        pool,
        policy_text,
        registry,
        only_sources: Some(manifest.inputs.iter().map(|i| i.source.clone()).collect()),
        places,
        // Re-encoded from the published places: what is compared is recomputed.
        places_parquet: None,
        layout,
        trust_rules,
    })
}

/// The policy a published epoch was computed with (see [`published_policy`]).
#[derive(Debug, Clone)]
pub struct PublishedPolicy {
    /// The text of its stored `policy.toml`, byte for byte (its SHA-256 is the manifest's).
    pub text: String,
    /// That text parsed.
    pub policy: crate::policy::Policy,
    /// The places it was scored with (from its stored `places.parquet`).
    pub places: crate::places::Places,
}

/// The policy a published epoch was computed with: the text of its stored `policy.toml` and
/// the places it was scored with (from its stored `places.parquet`, no source file or GDAL
/// needed). `tessera epoch run` without `--policy` recomputes a published epoch under it, so a
/// re-run after an upgrade that added policy keys (with their defaults) is still a no-op. (A
/// `policy.toml` edited since shows as a policy change: its hash is not the manifest's.)
///
/// # Errors
/// [`Error::Io`]/[`Error::Data`] naming `policy.toml` or `places.parquet` when one cannot be
/// read or parsed.
///
/// ```
/// # let d = tempfile::tempdir().unwrap();
/// # let lake = tessera::lake::Lake::open(d.path()).unwrap();
/// # let fleet = tessera::simulate::simulate(&tessera::simulate::SimConfig { drivers: 4, epochs: 1, trips: 1, minutes: 2, ..Default::default() });
/// # for f in &fleet.files { lake.ingest(&f.device, &f.name, &f.bytes).unwrap(); }
/// # let reg = tessera::registry::Registry::parse(fleet.registry_csv.as_bytes(), "r").unwrap();
/// let e: tessera::epoch::Epoch = "2026-W46".parse().unwrap();
/// tessera::pipeline::run(&lake, &tessera::pipeline::EpochInputs::new(e, 1000, reg), &tessera::pipeline::no_progress).unwrap();
/// let m = tessera::audit::read_manifest(&lake.epoch_dir(&e).join("manifest.json")).unwrap();
/// let p = tessera::audit::published_policy(&lake, &e, &m).unwrap();
/// assert_eq!(p.text, tessera::policy::Policy::default().to_toml());
/// assert_eq!(p.policy, tessera::policy::Policy::default());
/// assert!(p.places.regions.is_empty());
/// ```
pub fn published_policy(lake: &Lake, epoch: &Epoch, manifest: &Manifest) -> Result<PublishedPolicy> {
    let dir = lake.epoch_dir(epoch);
    let policy_path = dir.join("policy.toml");
    let text = String::from_utf8(read(&policy_path)?).map_err(|_| data(&policy_path, "not UTF-8"))?;
    let policy = crate::policy::Policy::from_toml_str(&text).map_err(|e| data(&policy_path, e.to_string()))?;
    let places = published_places(&dir, &policy, manifest)?;
    Ok(PublishedPolicy { text, policy, places })
}

/// The policy a run of `epoch` given none is computed under, when the epoch is published: its
/// own ([`published_policy`]; the CLI's `epoch run`, `tessera.run_epoch` and Spark's driver
/// alike). `None` when it is not published: the default policy.
///
/// # Errors
/// As [`read_manifest`] and [`published_policy`].
///
/// ```
/// # let d = tempfile::tempdir().unwrap();
/// # let lake = tessera::lake::Lake::open(d.path()).unwrap();
/// let e: tessera::epoch::Epoch = "2026-W46".parse().unwrap();
/// assert!(tessera::audit::policy_of_published(&lake, &e).unwrap().is_none());
/// ```
pub fn policy_of_published(lake: &Lake, epoch: &Epoch) -> Result<Option<PublishedPolicy>> {
    let path = lake.epoch_dir(epoch).join("manifest.json");
    if !path.is_file() {
        return Ok(None);
    }
    let m = read_manifest(&path)?;
    published_policy(lake, epoch, &m).map(Some)
}

/// The places a published epoch was scored with: its stored `places.parquet` (no source file
/// or GDAL needed), with the manifest's record of the source files.
fn published_places(dir: &Path, policy: &crate::policy::Policy, manifest: &Manifest) -> Result<crate::places::Places> {
    let Some(rec) = &manifest.places else {
        return Ok(crate::places::Places::default());
    };
    let path = dir.join("places.parquet");
    let bytes = bytes::Bytes::from(read(&path)?);
    let ids: Vec<String> = policy.bounties.iter().map(|b| b.id.clone()).collect();
    let mut places = tables::places_from_parquet(&bytes, policy.roads.is_some(), &ids).map_err(|m| data(&path, m))?;
    // A region whose cells all went to another region has no row in places.parquet, but it has
    // its row (0 cells) in regions.parquet: take the region list from there too.
    let regions_path = dir.join("regions.parquet");
    if regions_path.exists() {
        let listed =
            tables::from_parquet(read(&regions_path)?.into()).map_err(|e| data(&regions_path, e.to_string()))?;
        let mut more = Vec::new();
        for b in &listed {
            let name = tables::column::<StringArray>(b, "region").map_err(|m| data(&regions_path, m))?;
            let weight = tables::column::<Decimal128Array>(b, "weight").map_err(|m| data(&regions_path, m))?;
            for i in (0..b.num_rows()).filter(|&i| !name.is_null(i)) {
                let w = u64::try_from(weight.value(i)).map_err(|_| data(&regions_path, "negative region weight"))?;
                more.push(crate::places::Region {
                    name: name.value(i).to_string(),
                    weight: w,
                });
            }
        }
        places.add_regions(more).map_err(|m| data(&regions_path, m))?;
    }
    places.sources = rec
        .sources
        .iter()
        .map(|s| crate::places::PlaceSource {
            role: s.role.clone(),
            path: s.path.clone(),
            sha256: s.sha256.clone(),
        })
        .collect();
    Ok(places)
}

/// One (recipient, kind) row of `rewards.parquet`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RewardRow {
    /// Wallet.
    pub recipient: String,
    /// `base` (the epoch pool) or `bounty:<id>`.
    pub kind: String,
    /// Amount of this kind, base units (decimal string).
    pub amount: String,
    /// The recipient's total over every kind: its merkle leaf's amount (decimal string).
    pub total: String,
    /// Points (decimal, 6 places).
    pub points: String,
    /// Devices.
    pub devices: u32,
    /// Cells with points.
    pub cells: u64,
    /// Merkle leaf.
    pub leaf: String,
    /// Merkle proof, leaf to root.
    pub proof: Vec<String>,
}

fn dec_str(a: &Decimal128Array, i: usize) -> String {
    a.value_as_string(i)
}

/// Recipient → total amount (decimal string, every kind) of a `rewards.parquet` held in memory.
///
/// # Errors
/// [`Error::Invalid`] when the bytes are not a rewards table.
///
/// ```
/// assert!(tessera::audit::rewards_from_bytes(b"not parquet").is_err());
/// ```
pub fn rewards_from_bytes(bytes: &[u8]) -> Result<BTreeMap<String, String>> {
    let data = |m: String| Error::Invalid(format!("rewards.parquet: {m}"));
    let mut out = BTreeMap::new();
    for b in tables::from_parquet(bytes.to_vec().into()).map_err(|e| data(e.to_string()))? {
        let r = tables::column::<StringArray>(&b, "recipient").map_err(data)?;
        let a = tables::column::<Decimal128Array>(&b, "total").map_err(data)?;
        for i in 0..b.num_rows() {
            out.insert(r.value(i).to_string(), a.value(i).to_string());
        }
    }
    Ok(out)
}

/// Every row of an epoch's `rewards.parquet`.
///
/// # Errors
/// [`Error::Io`]/[`Error::Data`] naming `rewards.parquet` when it cannot be read or lacks a column.
///
/// ```
/// # let d = tempfile::tempdir().unwrap();
/// # let lake = tessera::lake::Lake::open(d.path()).unwrap();
/// # let fleet = tessera::simulate::simulate(&tessera::simulate::SimConfig { drivers: 4, epochs: 1, trips: 1, minutes: 2, ..Default::default() });
/// # for f in &fleet.files { lake.ingest(&f.device, &f.name, &f.bytes).unwrap(); }
/// # let reg = tessera::registry::Registry::parse(fleet.registry_csv.as_bytes(), "r").unwrap();
/// let e: tessera::epoch::Epoch = "2026-W46".parse().unwrap();
/// tessera::pipeline::run(&lake, &tessera::pipeline::EpochInputs::new(e, 1000, reg), &tessera::pipeline::no_progress).unwrap();
/// let rows = tessera::audit::read_rewards(&lake, &e).unwrap();
/// assert_eq!(rows.iter().map(|r| r.amount.parse::<u128>().unwrap()).sum::<u128>(), 1000);
/// assert!(rows.iter().all(|r| r.kind == "base" && r.total == r.amount)); // no bounty
/// ```
pub fn read_rewards(lake: &Lake, epoch: &Epoch) -> Result<Vec<RewardRow>> {
    let path = lake.epoch_dir(epoch).join("rewards.parquet");
    let mut out = Vec::new();
    for b in batches(&path)? {
        let r = column::<StringArray>(&b, "recipient", &path)?;
        let k = column::<StringArray>(&b, "kind", &path)?;
        let a = column::<Decimal128Array>(&b, "amount", &path)?;
        let t = column::<Decimal128Array>(&b, "total", &path)?;
        let p = column::<Decimal128Array>(&b, "points", &path)?;
        let d = column::<UInt32Array>(&b, "devices", &path)?;
        let c = column::<UInt64Array>(&b, "cells", &path)?;
        let l = column::<StringArray>(&b, "leaf", &path)?;
        let pr = column::<ListArray>(&b, "proof", &path)?;
        for i in 0..b.num_rows() {
            let list = pr.value(i);
            let list = list
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| data(&path, "proof items are not strings"))?;
            out.push(RewardRow {
                recipient: r.value(i).to_string(),
                kind: k.value(i).to_string(),
                amount: dec_str(a, i),
                total: dec_str(t, i),
                points: dec_str(p, i),
                devices: d.value(i),
                cells: c.value(i),
                leaf: l.value(i).to_string(),
                proof: (0..list.len()).map(|j| list.value(j).to_string()).collect(),
            });
        }
    }
    Ok(out)
}

/// A claim as a wallet app passes it to the claim contract.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ProofDoc {
    /// Epoch.
    pub epoch: String,
    /// Merkle scheme.
    pub scheme: String,
    /// Root (also in the manifest).
    pub root: String,
    /// The claims (one for `proof RECIPIENT`, all for `--all`).
    pub claims: Vec<crate::merkle::Claim>,
}

/// The proof of one recipient, or of all when `recipient` is `None`. Each proof is checked
/// against the manifest's root before it is returned.
///
/// # Errors
/// [`Error::Invalid`] when the recipient received nothing (a device id is answered with the wallet it pays); [`Error::Data`] when a stored proof does not verify against the manifest root; I/O errors naming the file.
///
/// ```
/// # let d = tempfile::tempdir().unwrap();
/// # let lake = tessera::lake::Lake::open(d.path()).unwrap();
/// # let fleet = tessera::simulate::simulate(&tessera::simulate::SimConfig { drivers: 4, epochs: 1, trips: 1, minutes: 2, ..Default::default() });
/// # for f in &fleet.files { lake.ingest(&f.device, &f.name, &f.bytes).unwrap(); }
/// # let reg = tessera::registry::Registry::parse(fleet.registry_csv.as_bytes(), "r").unwrap();
/// let e: tessera::epoch::Epoch = "2026-W46".parse().unwrap();
/// tessera::pipeline::run(&lake, &tessera::pipeline::EpochInputs::new(e, 1000, reg), &tessera::pipeline::no_progress).unwrap();
/// let all = tessera::audit::proof(&lake, &e, None).unwrap();
/// assert!(!all.claims.is_empty());
/// let one = tessera::audit::proof(&lake, &e, Some(&all.claims[0].recipient)).unwrap();
/// assert_eq!(one.claims, all.claims[..1]);
/// ```
pub fn proof(lake: &Lake, epoch: &Epoch, recipient: Option<&str>) -> Result<ProofDoc> {
    let mpath = lake.epoch_dir(epoch).join("manifest.json");
    let m = read_manifest(&mpath)?;
    let scheme = m.merkle.scheme.clone();
    let root = m
        .merkle
        .root
        .clone()
        .ok_or_else(|| data(&mpath, "no merkle root (nothing was allocated)"))?;
    let rows = read_rewards(lake, epoch)?;
    let wanted = recipient.map(|r| crate::registry::normalize_wallet(r).unwrap_or_else(|| r.to_string()));
    let mut claims = Vec::new();
    let mut seen = BTreeSet::new();
    for r in rows {
        // One leaf per recipient (its first row; every row carries the same leaf and total).
        if wanted.as_ref().is_some_and(|w| *w != r.recipient) || !seen.insert(r.recipient.clone()) {
            continue;
        }
        let c = crate::merkle::Claim {
            recipient: r.recipient,
            amount: r.total,
            leaf: r.leaf,
            proof: r.proof,
        };
        if !crate::merkle::verify_claim(&scheme, &root, &c) {
            return Err(data(
                &mpath,
                format!("the proof of {} does not verify against the manifest root", c.recipient),
            ));
        }
        claims.push(c);
    }
    if let (Some(w), true) = (&wanted, claims.is_empty()) {
        // A device id instead of a wallet: say which wallet it pays.
        let paid = published_inputs(lake, epoch, &m)
            .ok()
            .and_then(|i| i.registry.wallet(w).map(str::to_string));
        return Err(Error::Invalid(match paid {
            Some(wallet) => format!(
                "{w} is a device, not a wallet: proofs are per wallet, and {w} pays {wallet} (try `tessera proof --epoch {epoch} {wallet}`)"
            ),
            None => format!("{w} received nothing in epoch {epoch} (proofs are per wallet address)"),
        }));
    }
    Ok(ProofDoc {
        epoch: epoch.to_string(),
        scheme,
        root,
        claims,
    })
}

/// One file that does not match.
#[derive(Debug, Clone, Serialize)]
pub struct Mismatch {
    /// File name in `epochs/E/`.
    pub file: String,
    /// What differs.
    pub problem: String,
    /// Rows only in the published file (at most 20).
    pub published_only: Vec<String>,
    /// Rows only in the recomputed file (at most 20).
    pub recomputed_only: Vec<String>,
}

/// The rows (Parquet) or lines (text) only in `published` and only in `recomputed`, 20 at most
/// each.
fn file_diff(name: &str, published: &[u8], recomputed: &[u8]) -> (Vec<String>, Vec<String>) {
    if name.ends_with(".parquet") {
        return row_diff(published, recomputed);
    }
    let lines = |b: &[u8]| -> Vec<String> { String::from_utf8_lossy(b).lines().map(str::to_string).collect() };
    let (pa, pb) = (lines(published), lines(recomputed));
    (
        pa.iter().filter(|l| !pb.contains(l)).take(20).cloned().collect(),
        pb.iter().filter(|l| !pa.contains(l)).take(20).cloned().collect(),
    )
}

/// The result of `epoch verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Epoch.
    pub epoch: String,
    /// True only on an exact match of every file and hash.
    pub ok: bool,
    /// Files checked.
    pub checked: Vec<String>,
    /// What did not match.
    pub mismatches: Vec<Mismatch>,
    /// Late data: sources in the lake now, with fixes in the epoch's window, that the published
    /// manifest does not list (received after publication). They are not paid for this epoch
    /// (published epochs are immutable) and not part of what is recomputed; listed here so an
    /// operator sees them. Content hashes with device and file name.
    pub late_sources: Vec<String>,
}

/// Render every row of a Parquet file as text, for row-level diffs.
fn rows_of(bytes: &[u8]) -> std::result::Result<Vec<String>, String> {
    let bs = tables::from_parquet(bytes.to_vec().into()).map_err(|e| e.to_string())?;
    let opts = FormatOptions::default();
    let mut out = Vec::new();
    for b in bs {
        let schema = b.schema();
        let fmts: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| e.to_string())?;
        for i in 0..b.num_rows() {
            let cells: Vec<String> = schema
                .fields()
                .iter()
                .zip(&fmts)
                .map(|(f, fm)| format!("{}={}", f.name(), fm.value(i)))
                .collect();
            out.push(cells.join(", "));
        }
    }
    Ok(out)
}

fn row_diff(published: &[u8], recomputed: &[u8]) -> (Vec<String>, Vec<String>) {
    match (rows_of(published), rows_of(recomputed)) {
        (Ok(a), Ok(b)) => {
            let mut count: BTreeMap<&String, i64> = BTreeMap::new();
            for r in &a {
                *count.entry(r).or_default() += 1;
            }
            for r in &b {
                *count.entry(r).or_default() -= 1;
            }
            let only_a = count
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(r, _)| (*r).clone())
                .take(20)
                .collect();
            let only_b = count
                .iter()
                .filter(|(_, n)| **n < 0)
                .map(|(r, _)| (*r).clone())
                .take(20)
                .collect();
            (only_a, only_b)
        }
        (Err(e), _) => (vec![format!("(published file unreadable: {e})")], vec![]),
        (_, Err(e)) => (vec![], vec![format!("(recomputed file unreadable: {e})")]),
    }
}

/// Recompute an epoch from the lake (sources, the epoch's stored policy and registry, the
/// previous epoch's state) and compare with the published files and manifest. `manifest`
/// overrides the manifest to check against (e.g. the one published on chain or on a website).
///
/// # Errors
/// [`Error::Invalid`] when the epoch has no outputs; I/O and data errors naming the file. A mismatch is not an error: it is in the report.
///
/// ```
/// # let d = tempfile::tempdir().unwrap();
/// # let lake = tessera::lake::Lake::open(d.path()).unwrap();
/// # let fleet = tessera::simulate::simulate(&tessera::simulate::SimConfig { drivers: 4, epochs: 1, trips: 1, minutes: 2, ..Default::default() });
/// # for f in &fleet.files { lake.ingest(&f.device, &f.name, &f.bytes).unwrap(); }
/// # let reg = tessera::registry::Registry::parse(fleet.registry_csv.as_bytes(), "r").unwrap();
/// let e: tessera::epoch::Epoch = "2026-W46".parse().unwrap();
/// tessera::pipeline::run(&lake, &tessera::pipeline::EpochInputs::new(e, 1000, reg), &tessera::pipeline::no_progress).unwrap();
/// let r = tessera::audit::verify(&lake, &e, None, &tessera::pipeline::no_progress).unwrap();
/// assert!(r.ok && r.mismatches.is_empty());
/// ```
pub fn verify(lake: &Lake, epoch: &Epoch, manifest: Option<&Path>, progress: Progress) -> Result<VerifyReport> {
    let dir = lake.epoch_dir(epoch);
    if !dir.is_dir() {
        return Err(Error::Invalid(format!(
            "epoch {epoch} has no outputs in {}",
            lake.root().display()
        )));
    }
    let mpath = manifest
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join("manifest.json"));
    let published_manifest = read_manifest(&mpath)?;
    let mut mismatches = Vec::new();
    let mut mm = |file: &str, problem: String, a: Vec<String>, b: Vec<String>| {
        mismatches.push(Mismatch {
            file: file.to_string(),
            problem,
            published_only: a,
            recomputed_only: b,
        })
    };
    // 1. The files on disk must be the ones the manifest names.
    let outputs = published_manifest.outputs.clone();
    let mut on_disk: BTreeSet<String> = BTreeSet::new();
    for e in std::fs::read_dir(&dir).map_err(|source| Error::Io {
        path: dir.display().to_string(),
        source,
    })? {
        let name = e
            .map_err(|source| Error::Io {
                path: dir.display().to_string(),
                source,
            })?
            .file_name()
            .to_string_lossy()
            .to_string();
        if name != "manifest.json" {
            on_disk.insert(name);
        }
    }
    for (name, sha) in &outputs {
        match sha256_file(&dir.join(name)) {
            Ok(h) if *sha == h => {}
            Ok(_) => mm(
                name,
                format!("SHA-256 differs from {}", mpath.display()),
                vec![],
                vec![],
            ),
            Err(_) => mm(name, "named in the manifest but missing".into(), vec![], vec![]),
        }
    }
    for name in &on_disk {
        if !outputs.contains_key(name) {
            mm(name, "present but not named in the manifest".into(), vec![], vec![]);
        }
    }
    // 2. Recompute with the published inputs and compare every byte.
    let inputs = published_inputs(lake, epoch, &published_manifest)?;
    // Recomputed into a scratch directory (streamed: an epoch of any size), compared by hash;
    // only a file that differs is read whole, for its row-level diff.
    let tmp = scratch_dir()?;
    let recomputed = pipeline::compute_to_dir(lake, &inputs, tmp.path(), progress)?;
    let mut checked = Vec::new();
    for (name, sha) in &recomputed.sha256 {
        checked.push(name.clone());
        let path = if name == "manifest.json" {
            mpath.clone()
        } else {
            dir.join(name)
        };
        let Ok(published_sha) = sha256_file(&path) else {
            mm(name, "missing".into(), vec![], vec![]);
            continue;
        };
        if published_sha == *sha {
            continue;
        }
        let (a, b) = file_diff(name, &read(&path)?, &read(&tmp.path().join(name))?);
        mm(name, "recomputed bytes differ".into(), a, b);
    }
    let listed: BTreeSet<&str> = published_manifest.inputs.iter().map(|i| i.source.as_str()).collect();
    let (start, end) = (epoch.start_ms(), epoch.end_ms());
    let late_sources = lake
        .sources()?
        .into_iter()
        .filter(|m| matches!((m.min_time_ms, m.max_time_ms), (Some(a), Some(b)) if a < end && b >= start))
        .filter(|m| !listed.contains(m.hash.as_str()))
        .map(|m| {
            format!(
                "{} ({} {}, received {})",
                m.hash,
                m.device,
                m.name,
                m.received_at.as_deref().unwrap_or("unknown")
            )
        })
        .collect();
    Ok(VerifyReport {
        epoch: epoch.to_string(),
        ok: mismatches.is_empty(),
        checked,
        mismatches,
        late_sources,
    })
}

/// One recipient's change under another policy.
#[derive(Debug, Clone, Serialize)]
pub struct DiffLine {
    /// Wallet.
    pub recipient: String,
    /// Published amount.
    pub before: String,
    /// Amount under the other policy.
    pub after: String,
    /// after - before (signed decimal).
    pub delta: String,
}

/// Recompute an epoch under another policy (nothing is written) and compare per recipient.
///
/// # Errors
/// As [`verify`]: the published inputs must be readable; the other policy must parse.
///
/// ```
/// # let d = tempfile::tempdir().unwrap();
/// # let lake = tessera::lake::Lake::open(d.path()).unwrap();
/// # let fleet = tessera::simulate::simulate(&tessera::simulate::SimConfig { drivers: 4, epochs: 1, trips: 1, minutes: 2, ..Default::default() });
/// # for f in &fleet.files { lake.ingest(&f.device, &f.name, &f.bytes).unwrap(); }
/// # let reg = tessera::registry::Registry::parse(fleet.registry_csv.as_bytes(), "r").unwrap();
/// let e: tessera::epoch::Epoch = "2026-W46".parse().unwrap();
/// tessera::pipeline::run(&lake, &tessera::pipeline::EpochInputs::new(e, 1000, reg), &tessera::pipeline::no_progress).unwrap();
/// let lines = tessera::audit::diff(&lake, &e, "[novelty]\nrank_weights = [1.0]\n", &tessera::pipeline::no_progress).unwrap();
/// assert_eq!(lines.iter().map(|l| l.after.parse::<u128>().unwrap()).sum::<u128>(), 1000);
/// ```
pub fn diff(lake: &Lake, epoch: &Epoch, other_policy_text: &str, progress: Progress) -> Result<Vec<DiffLine>> {
    diff_with(lake, epoch, other_policy_text, None, progress)
}

/// [`diff`] with the other policy's places given (`None`: the published epoch's places when
/// the other policy names the same `[[regions]]`, `[roads]` and `[[bounties]]`, else built from
/// it with the GeoJSON/OSM reader, paths relative to the current directory). With an
/// `[emission]` schedule the other policy's pool is used.
///
/// # Errors
/// As [`diff`], and the places' errors naming the source file.
///
/// ```
/// // see `diff`
/// ```
pub fn diff_with(
    lake: &Lake,
    epoch: &Epoch,
    other_policy_text: &str,
    places: Option<crate::places::Places>,
    progress: Progress,
) -> Result<Vec<DiffLine>> {
    let dir = lake.epoch_dir(epoch);
    let m = read_manifest(&dir.join("manifest.json"))?;
    let mut inputs = published_inputs(lake, epoch, &m)?;
    let old = crate::policy::Policy::from_toml_str(&inputs.policy_text)?;
    let new = crate::policy::Policy::from_toml_str(other_policy_text)?;
    inputs.places = match places {
        Some(p) => p,
        None if (&old.regions, &old.roads, &old.bounties) == (&new.regions, &new.roads, &new.bounties) => inputs.places,
        None => crate::places::build(&new, Path::new("."), &crate::places::shapes::Native)
            .map_err(|e| Error::Invalid(e.to_string()))?,
    };
    if let Some(em) = &new.emission {
        inputs.pool = em
            .pool_for(*epoch)
            .map_err(|m| Error::Invalid(format!("policy [emission]: {m}")))?;
    }
    inputs.policy_text = other_policy_text.to_string();
    let before: BTreeMap<String, u128> = read_rewards(lake, epoch)?
        .into_iter()
        .map(|r| (r.recipient, r.total.parse().unwrap_or(0)))
        .collect();
    let tmp = scratch_dir()?;
    pipeline::compute_to_dir(lake, &inputs, tmp.path(), progress)?;
    let rewards = read(&tmp.path().join("rewards.parquet"))?;
    let path = Path::new("rewards.parquet (recomputed)");
    let mut after: BTreeMap<String, u128> = BTreeMap::new();
    for b in tables::from_parquet(rewards.into()).map_err(|e| data(path, e.to_string()))? {
        let r = column::<StringArray>(&b, "recipient", path)?;
        let a = column::<Decimal128Array>(&b, "total", path)?;
        for i in 0..b.num_rows() {
            after.insert(r.value(i).to_string(), a.value(i) as u128);
        }
    }
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    Ok(keys
        .into_iter()
        .map(|k| {
            let (x, y) = (before.get(k).copied().unwrap_or(0), after.get(k).copied().unwrap_or(0));
            let delta = if y >= x {
                format!("+{}", y - x)
            } else {
                format!("-{}", x - y)
            };
            DiffLine {
                recipient: k.clone(),
                before: x.to_string(),
                after: y.to_string(),
                delta,
            }
        })
        .collect())
}

/// Per-device part of an explanation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceStory {
    /// Device id.
    pub device: String,
    /// Visits scored.
    pub visits: u64,
    /// Visits with points.
    pub visits_with_points: u64,
    /// Distinct cells.
    pub cells: u64,
    /// Cells never covered before (discovery).
    pub discoveries: u64,
    /// Visits by rank (1, 2, 3, 4+).
    pub ranks: BTreeMap<String, u64>,
    /// Points (decimal).
    pub points: String,
    /// Epoch rejections by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Up to five rejected fixes.
    pub rejected_examples: Vec<RejectedFix>,
    /// The device's source files read by the epoch.
    pub sources: Vec<SourceFile>,
}

/// A source file of the epoch: its id in the lake and the name it was ingested from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceFile {
    /// BLAKE3 of the raw bytes (hex).
    pub source: String,
    /// Original file name.
    pub name: String,
}

/// One rejected fix, as in `rejections.parquet`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RejectedFix {
    /// BLAKE3 of the source (hex).
    pub source: String,
    /// Original file name of the source.
    pub name: String,
    /// 1-based line in the source.
    pub line: u32,
    /// Reason.
    pub reason: String,
    /// Detail.
    pub detail: String,
}

/// One scored visit, as in `explain.parquet`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TopVisit {
    /// H3 cell, hex string.
    pub cell: String,
    /// Device.
    pub device: String,
    /// Rank in the cell (1 = first).
    pub rank: u32,
    /// Epochs since the cell was last covered (`None`: never covered before).
    pub age_epochs: Option<i64>,
    /// Rank multiplier (decimal).
    pub rank_w: String,
    /// Freshness multiplier (decimal).
    pub freshness_w: String,
    /// Quality multiplier (decimal).
    pub quality_w: String,
    /// Points (decimal).
    pub points: String,
}

/// Why a recipient got what it got.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// Epoch.
    pub epoch: String,
    /// Wallet.
    pub recipient: String,
    /// Amount (base units) and points.
    pub amount: String,
    /// Points.
    pub points: String,
    /// Share of the pool, percent (display only).
    pub share_percent: String,
    /// The policy's multipliers, as published.
    pub policy_sha256: String,
    /// One story per device registered to the wallet.
    pub devices: Vec<DeviceStory>,
    /// The ten visits that earned the most.
    pub top_visits: Vec<TopVisit>,
    /// Trust evidence against the wallet's devices (why it got less): every row of
    /// `flags.parquet` for them that withheld or cut something.
    pub flags: Vec<tables::FlagRow>,
}

/// What one wallet's visits in `explain.parquet` add up to, per device.
#[derive(Default)]
struct VisitTotals {
    cells: BTreeMap<String, BTreeSet<u64>>,
    points: BTreeMap<String, i128>,
    top: Vec<(i128, TopVisit)>,
}

/// Fold the wallet's rows of `explain.parquet` into the device stories.
fn read_visits(path: &Path, wallet: &str, stories: &mut BTreeMap<String, DeviceStory>) -> Result<VisitTotals> {
    let mut t = VisitTotals::default();
    for b in batches(path)? {
        let rec = column::<StringArray>(&b, "recipient", path)?;
        let dev = column::<StringArray>(&b, "device", path)?;
        let cell = column::<UInt64Array>(&b, "cell", path)?;
        let cell_id = column::<StringArray>(&b, "cell_id", path)?;
        let rank = column::<UInt32Array>(&b, "rank", path)?;
        let age = column::<arrow_array::Int64Array>(&b, "age_epochs", path)?;
        let (rw, fw, qw, p) = (
            column::<Decimal128Array>(&b, "rank_w", path)?,
            column::<Decimal128Array>(&b, "freshness_w", path)?,
            column::<Decimal128Array>(&b, "quality_w", path)?,
            column::<Decimal128Array>(&b, "points", path)?,
        );
        for i in (0..b.num_rows()).filter(|i| rec.value(*i) == wallet) {
            let d = dev.value(i).to_string();
            let s = stories.entry(d.clone()).or_insert_with(|| DeviceStory {
                device: d.clone(),
                ..Default::default()
            });
            s.visits += 1;
            s.visits_with_points += u64::from(p.value(i) > 0);
            s.discoveries += u64::from(age.is_null(i));
            let rk = match rank.value(i) {
                r @ 1..=3 => r.to_string(),
                _ => "4+".into(),
            };
            *s.ranks.entry(rk).or_default() += 1;
            t.cells.entry(d.clone()).or_default().insert(cell.value(i));
            *t.points.entry(d.clone()).or_default() += p.value(i);
            t.top.push((
                p.value(i),
                TopVisit {
                    cell: cell_id.value(i).to_string(),
                    device: d,
                    rank: rank.value(i),
                    age_epochs: (!age.is_null(i)).then(|| age.value(i)),
                    rank_w: rw.value_as_string(i),
                    freshness_w: fw.value_as_string(i),
                    quality_w: qw.value_as_string(i),
                    points: p.value_as_string(i),
                },
            ));
        }
    }
    t.top.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| (&a.1.cell, &a.1.device).cmp(&(&b.1.cell, &b.1.device)))
    });
    Ok(t)
}

/// Count the devices' rows of `rejections.parquet` by reason and keep five examples each, with
/// the source's original file name from `names`.
fn read_rejections(
    path: &Path,
    names: &BTreeMap<&str, &str>,
    stories: &mut BTreeMap<String, DeviceStory>,
) -> Result<()> {
    for b in batches(path)? {
        let dev = column::<StringArray>(&b, "device", path)?;
        let src = column::<StringArray>(&b, "source", path)?;
        let line = column::<UInt32Array>(&b, "line", path)?;
        let reason = column::<StringArray>(&b, "reason", path)?;
        let detail = column::<StringArray>(&b, "detail", path)?;
        for i in 0..b.num_rows() {
            let Some(s) = stories.get_mut(dev.value(i)) else {
                continue;
            };
            *s.rejected.entry(reason.value(i).to_string()).or_default() += 1;
            if s.rejected_examples.len() < 5 {
                s.rejected_examples.push(RejectedFix {
                    source: src.value(i).to_string(),
                    name: names.get(src.value(i)).unwrap_or(&"").to_string(),
                    line: line.value(i),
                    reason: reason.value(i).to_string(),
                    detail: detail.value(i).to_string(),
                });
            }
        }
    }
    Ok(())
}

/// `amount / pool` in percent with four decimals, in integers (rounded half up).
fn share_percent(amount: u128, pool: u128) -> String {
    if pool == 0 {
        return "0.0000".into();
    }
    let (a, p) = (ethnum::U256::from(amount), ethnum::U256::from(pool));
    let x = (a * 1_000_000 + p / 2) / p; // percent × 10^4
    format!("{}.{:04}", x / 10_000, x % 10_000)
}

/// Explain a recipient's amount from the published explain and rejection files: per device its
/// source files (by original name), visits, cells, ranks, points and rejected fixes, and the ten
/// visits that earned the most.
///
/// # Errors
/// [`Error::Invalid`] when the wallet has no device in the epoch's registry; I/O and data errors
/// naming the file.
///
/// ```no_run
/// let lake = tessera::lake::Lake::open("demo-lake").unwrap();
/// let x = tessera::audit::explain(&lake, &"2026-W47".parse().unwrap(), "0x2b52b99793b2795a0a25981a0bcb667ff1c444c6").unwrap();
/// println!("{} base units for {} points", x.amount, x.points);
/// ```
pub fn explain(lake: &Lake, epoch: &Epoch, recipient: &str) -> Result<Explanation> {
    let dir = lake.epoch_dir(epoch);
    let m = read_manifest(&dir.join("manifest.json"))?;
    let inputs = published_inputs(lake, epoch, &m)?;
    // A device id is answered with the wallet it pays (as `proof` does).
    let wallet = crate::registry::normalize_wallet(recipient)
        .or_else(|| inputs.registry.wallet(recipient).map(str::to_string))
        .unwrap_or_else(|| recipient.to_string());
    let mut stories: BTreeMap<String, DeviceStory> = inputs
        .registry
        .devices()
        .filter(|(_, w)| *w == wallet)
        .map(|(d, _)| {
            let story = DeviceStory {
                device: d.to_string(),
                ..Default::default()
            };
            (d.to_string(), story)
        })
        .collect();
    if stories.is_empty() {
        return Err(Error::Invalid(format!(
            "{wallet} has no device in epoch {epoch}'s registry"
        )));
    }
    let rewards = read_rewards(lake, epoch)?;
    let row = rewards.iter().find(|r| r.recipient == wallet);
    let totals = read_visits(&dir.join("explain.parquet"), &wallet, &mut stories)?;
    for i in &m.inputs {
        if let Some(s) = stories.get_mut(&i.device) {
            s.sources.push(SourceFile {
                source: i.source.clone(),
                name: i.name.clone(),
            });
        }
    }
    let names: BTreeMap<&str, &str> = m.inputs.iter().map(|i| (i.source.as_str(), i.name.as_str())).collect();
    read_rejections(&dir.join("rejections.parquet"), &names, &mut stories)?;
    for (d, s) in stories.iter_mut() {
        s.cells = totals.cells.get(d).map_or(0, |c| c.len() as u64);
        let p = totals.points.get(d).copied().unwrap_or(0);
        s.points = format!("{}.{:06}", p / 1_000_000, p % 1_000_000);
    }
    // The recipient's total over the pool and every bounty; `points` are the pool's.
    let amount: u128 = row.map_or(0, |r| r.total.parse().unwrap_or(0));
    Ok(Explanation {
        epoch: epoch.to_string(),
        recipient: wallet,
        amount: amount.to_string(),
        points: row.map_or("0.000000".into(), |r| r.points.clone()),
        share_percent: share_percent(amount, inputs.pool),
        policy_sha256: m.policy_sha256.clone(),
        flags: crate::review::flags(lake, epoch)?
            .into_iter()
            .filter(|f| stories.contains_key(&f.device) && !matches!(f.effect.as_str(), "none" | "skip_fix"))
            .collect(),
        devices: stories.into_values().collect(),
        top_visits: totals.top.into_iter().take(10).map(|t| t.1).collect(),
    })
}
