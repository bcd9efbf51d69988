//! Reading the trust evidence of a published epoch back: `flags.parquet` per device, and the
//! review of flagged devices ranked by what they would have earned with the trust detectors off
//! (the same published inputs recomputed under the policy with `[trust] enabled = false`;
//! nothing is written).

use crate::audit::{published_inputs, read_manifest, read_rewards};
use crate::epoch::Epoch;
use crate::lake::{Error, Lake, Result};
use crate::pipeline::{compute, no_progress};
use crate::policy::Policy;
use crate::tables::{self, FlagRow};
use arrow_array::{Decimal128Array, StringArray};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every row of an epoch's `flags.parquet` (empty when the epoch ran with trust off).
///
/// # Errors
/// I/O or Parquet errors naming the file.
///
/// ```
/// # let d = tempfile::tempdir().unwrap();
/// # let lake = tessera::lake::Lake::open(d.path()).unwrap();
/// assert!(tessera::review::flags(&lake, &"2026-W47".parse().unwrap()).unwrap().is_empty());
/// ```
pub fn flags(lake: &Lake, epoch: &Epoch) -> Result<Vec<FlagRow>> {
    let p = lake.epoch_dir(epoch).join("flags.parquet");
    if !p.exists() {
        return Ok(Vec::new());
    }
    let data = |message: String| Error::Data {
        path: p.display().to_string(),
        message,
    };
    let bytes = std::fs::read(&p).map_err(|source| Error::Io {
        path: p.display().to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for b in tables::from_parquet(bytes.into()).map_err(|e| data(e.to_string()))? {
        out.extend(tables::flags_rows(&b).map_err(data)?);
    }
    Ok(out)
}

/// One flagged device in a review.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewLine {
    /// Device.
    pub device: String,
    /// Its wallet.
    pub recipient: String,
    /// The device's points with trust off (decimal string).
    pub points_without_trust: String,
    /// Its published points.
    pub points: String,
    /// The wallet's amount with trust off (base units, decimal string).
    pub amount_without_trust: String,
    /// The wallet's published amount.
    pub amount: String,
    /// Findings per detector.
    pub detectors: BTreeMap<String, u64>,
    /// Source files named in the evidence.
    pub sources: Vec<String>,
    /// The evidence rows that withheld or cut something.
    pub evidence: Vec<FlagRow>,
}

/// A review of an epoch's flagged devices (a device is flagged when a finding withheld some of
/// its fixes, segments or time, or its trust multiplier is below 1).
#[derive(Debug, Clone, Serialize)]
pub struct Review {
    /// Epoch.
    pub epoch: String,
    /// Flagged devices, most points without trust first (ties: device id).
    pub devices: Vec<ReviewLine>,
}

fn points_by_device(files: &BTreeMap<String, Vec<u8>>) -> Result<BTreeMap<String, i128>> {
    let data = |m: String| Error::Invalid(format!("explain.parquet recomputed: {m}"));
    let mut out = BTreeMap::new();
    for b in tables::from_parquet(files["explain.parquet"].clone().into()).map_err(|e| data(e.to_string()))? {
        let d = tables::column::<StringArray>(&b, "device").map_err(data)?;
        let p = tables::column::<Decimal128Array>(&b, "points").map_err(data)?;
        for i in 0..b.num_rows() {
            *out.entry(d.value(i).to_string()).or_default() += p.value(i);
        }
    }
    Ok(out)
}

fn published_points(path: &Path) -> Result<BTreeMap<String, i128>> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    points_by_device(&BTreeMap::from([("explain.parquet".to_string(), bytes)]))
}

fn dec6(p: i128) -> String {
    format!("{}.{:06}", p / 1_000_000, p % 1_000_000)
}

/// Review a published epoch's flagged devices: what each would have earned with the trust
/// detectors off, what it got, and the evidence.
///
/// # Errors
/// The epoch is not published, or its inputs cannot be read (as [`crate::audit::verify`]).
///
/// ```no_run
/// # let lake = tessera::lake::Lake::open(std::path::Path::new("lake")).unwrap();
/// let r = tessera::review::review(&lake, &"2026-W47".parse().unwrap()).unwrap();
/// for d in r.devices { println!("{} lost {} points", d.device, d.points_without_trust); }
/// ```
pub fn review(lake: &Lake, epoch: &Epoch) -> Result<Review> {
    let dir = lake.epoch_dir(epoch);
    let m = read_manifest(&dir.join("manifest.json"))?;
    let inputs = published_inputs(lake, epoch, &m)?;
    let rows = flags(lake, epoch)?;
    let mut policy = Policy::from_toml_str(&inputs.policy_text)?;
    policy.trust.enabled = false;
    let v1 = compute(
        lake,
        &crate::pipeline::EpochInputs {
            policy_text: policy.to_toml(),
            ..inputs.clone()
        },
        &no_progress,
    )?;
    let before = points_by_device(&v1.files)?;
    let after = published_points(&dir.join("explain.parquet"))?;
    let amount_v1 = crate::audit::rewards_from_bytes(&v1.files["rewards.parquet"])?;
    let amount: BTreeMap<String, String> = read_rewards(lake, epoch)?
        .into_iter()
        .map(|r| (r.recipient, r.total))
        .collect();
    let mut by_device: BTreeMap<String, Vec<FlagRow>> = BTreeMap::new();
    for r in rows
        .into_iter()
        .filter(|r| !matches!(r.effect.as_str(), "none" | "skip_fix"))
    {
        by_device.entry(r.device.clone()).or_default().push(r);
    }
    // Flagged: something withheld or multiplied, not only path cells left unfilled.
    by_device.retain(|_, rows| {
        rows.iter()
            .any(|r| r.effect.starts_with("withhold") || r.effect == "multiplier")
    });
    let mut devices: Vec<ReviewLine> = by_device
        .into_iter()
        .map(|(device, evidence)| {
            let wallet = inputs.registry.wallet(&device).unwrap_or_default().to_string();
            let mut detectors = BTreeMap::new();
            for e in &evidence {
                *detectors.entry(e.detector.clone()).or_default() += 1;
            }
            let sources: BTreeSet<String> = evidence
                .iter()
                .filter(|e| !e.source_name.is_empty())
                .map(|e| e.source_name.clone())
                .collect();
            ReviewLine {
                points_without_trust: dec6(before.get(&device).copied().unwrap_or(0)),
                points: dec6(after.get(&device).copied().unwrap_or(0)),
                amount_without_trust: amount_v1.get(&wallet).cloned().unwrap_or_else(|| "0".into()),
                amount: amount.get(&wallet).cloned().unwrap_or_else(|| "0".into()),
                recipient: wallet,
                device,
                detectors,
                sources: sources.into_iter().collect(),
                evidence,
            }
        })
        .collect();
    devices.sort_by(|a, b| {
        let p = |x: &ReviewLine| before.get(&x.device).copied().unwrap_or(0);
        p(b).cmp(&p(a)).then_with(|| a.device.cmp(&b.device))
    });
    Ok(Review {
        epoch: epoch.to_string(),
        devices,
    })
}
