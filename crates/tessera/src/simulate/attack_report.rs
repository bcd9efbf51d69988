//! How much of an attack fleet an epoch pays: the epoch computed with the trust detectors off
//! (policy v1) and on, compared per label. Claimed distance is what v1 would have covered;
//! paid is what still earns points with trust on. Distances are cells × the mean chord of an
//! H3 cell at the scoring resolution (1.36 × edge length: the mean length of a straight path
//! across a hexagon).

use crate::epoch::Epoch;
use crate::lake::{Lake, Result};
use crate::pipeline::{compute, no_progress, EpochInputs};
use crate::policy::Policy;
use crate::registry::Registry;
use crate::tables;
use arrow_array::{Decimal128Array, StringArray, UInt64Array};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One label's line of the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AttackLine {
    /// `honest` or the attack.
    pub label: String,
    /// Devices with the label.
    pub devices: u32,
    /// Cells covered under policy v1 (trust off).
    pub claimed_cells: u64,
    /// Claimed distance, km.
    pub claimed_km: f64,
    /// Cells that still earn points with trust on.
    pub paid_cells: u64,
    /// paid / claimed (0 when nothing was claimed).
    pub paid_share: f64,
    /// Share of the pool the label's wallets got with trust on.
    pub pool_share: f64,
    /// Share of the pool with trust off.
    pub pool_share_v1: f64,
    /// Cells covered under v1 that trust withheld.
    pub withheld_cells: u64,
    /// Withheld cells with no kept cell of the same device among their neighbours: road that is
    /// no longer covered (a cell a parked receiver's noise wandered into, next to the kept cell
    /// of the stop, is not lost road). For honest labels: what honest drivers lost.
    pub lost_cells: u64,
    /// Points with trust on, and off (decimal strings).
    pub points: String,
    /// Points with trust off.
    pub points_v1: String,
}

/// The report: one line per label, then totals.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AttackReport {
    /// Per label.
    pub lines: Vec<AttackLine>,
    /// Σ paid / Σ claimed over every attack.
    pub spoofed_paid_share: f64,
    /// Median of the attacks' paid shares (attacks that claimed anything).
    pub median_paid_share: f64,
    /// Share of the pool all attackers got with trust on.
    pub attackers_pool_share: f64,
    /// Honest cells lost (see [`AttackLine::lost_cells`]) / honest cells claimed.
    pub honest_lost_share: f64,
}

struct Run {
    /// (cell, device) → points (millionths)
    visits: BTreeMap<(u64, String), i128>,
    /// wallet → amount
    amounts: BTreeMap<String, i128>,
}

fn run(lake: &Lake, inputs: &EpochInputs) -> Result<Run> {
    let out = compute(lake, inputs, &no_progress)?;
    let data = |m: String| crate::lake::Error::Invalid(format!("attack report: {m}"));
    let mut visits = BTreeMap::new();
    for b in tables::from_parquet(out.files["explain.parquet"].clone().into()).map_err(|e| data(e.to_string()))? {
        let cell = tables::column::<UInt64Array>(&b, "cell").map_err(data)?;
        let dev = tables::column::<StringArray>(&b, "device").map_err(data)?;
        let pts = tables::column::<Decimal128Array>(&b, "points").map_err(data)?;
        for i in 0..b.num_rows() {
            visits.insert((cell.value(i), dev.value(i).to_string()), pts.value(i));
        }
    }
    let mut amounts = BTreeMap::new();
    for b in tables::from_parquet(out.files["rewards.parquet"].clone().into()).map_err(|e| data(e.to_string()))? {
        let r = tables::column::<StringArray>(&b, "recipient").map_err(data)?;
        let a = tables::column::<Decimal128Array>(&b, "total").map_err(data)?;
        for i in 0..b.num_rows() {
            amounts.insert(r.value(i).to_string(), a.value(i));
        }
    }
    Ok(Run { visits, amounts })
}

/// Compute `epoch` of `lake` with trust off and on and compare per label.
///
/// # Errors
/// As [`crate::pipeline::compute`].
///
/// ```no_run
/// // see tests/trust.rs and `tessera-attacks` in benches/
/// ```
pub fn evaluate(
    lake: &Lake,
    epoch: Epoch,
    registry: &Registry,
    labels: &[(String, String)],
    pool: u128,
) -> Result<AttackReport> {
    let mut v1 = Policy::default();
    v1.trust.enabled = false;
    let on = EpochInputs::new(epoch, pool, registry.clone());
    let off = EpochInputs {
        policy_text: v1.to_toml(),
        ..on.clone()
    };
    let (a, b) = (run(lake, &off)?, run(lake, &on)?);
    let res = Policy::default().kernels()?.resolution;
    let km_per_cell = res.edge_length_km() * 1.36;
    let mut by_label: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (d, l) in labels {
        by_label.entry(l.as_str()).or_default().push(d.as_str());
    }
    let pool_f = pool as f64;
    let mut lines = Vec::new();
    for (label, devs) in &by_label {
        let set: BTreeSet<&str> = devs.iter().copied().collect();
        let wallets: BTreeSet<&str> = devs.iter().filter_map(|d| registry.wallet(d)).collect();
        let mine = |r: &Run| -> Vec<((u64, String), i128)> {
            r.visits
                .iter()
                .filter(|(k, _)| set.contains(k.1.as_str()))
                .map(|(k, v)| (k.clone(), *v))
                .collect()
        };
        let (va, vb) = (mine(&a), mine(&b));
        let claimed = va.len() as u64;
        let paid = vb.iter().filter(|(_, p)| *p > 0).count() as u64;
        let on_keys: BTreeSet<&(u64, String)> = vb.iter().map(|(k, _)| k).collect();
        let withheld = va.iter().filter(|(k, _)| !on_keys.contains(k)).count() as u64;
        let lost = va
            .iter()
            .filter(|(k, _)| !on_keys.contains(k))
            .filter(|(k, _)| {
                h3o::CellIndex::try_from(k.0).is_ok_and(|c| {
                    !c.grid_disk::<Vec<_>>(1)
                        .iter()
                        .any(|n| on_keys.contains(&(u64::from(*n), k.1.clone())))
                })
            })
            .count() as u64;
        let share = |r: &Run| {
            wallets
                .iter()
                .map(|w| r.amounts.get(*w).copied().unwrap_or(0))
                .sum::<i128>() as f64
                / pool_f
        };
        let pts = |v: &[((u64, String), i128)]| {
            let t: i128 = v.iter().map(|x| x.1).sum();
            format!("{}.{:06}", t / 1_000_000, t % 1_000_000)
        };
        lines.push(AttackLine {
            label: label.to_string(),
            devices: devs.len() as u32,
            claimed_cells: claimed,
            claimed_km: claimed as f64 * km_per_cell,
            paid_cells: paid,
            paid_share: if claimed == 0 {
                0.0
            } else {
                paid as f64 / claimed as f64
            },
            pool_share: share(&b),
            pool_share_v1: share(&a),
            withheld_cells: withheld,
            lost_cells: lost,
            points: pts(&vb),
            points_v1: pts(&va),
        });
    }
    let attacks: Vec<&AttackLine> = lines.iter().filter(|l| !l.label.starts_with("honest")).collect();
    let (claimed, paid): (u64, u64) = attacks
        .iter()
        .fold((0, 0), |s, l| (s.0 + l.claimed_cells, s.1 + l.paid_cells));
    let mut shares: Vec<f64> = attacks
        .iter()
        .filter(|l| l.claimed_cells > 0)
        .map(|l| l.paid_share)
        .collect();
    shares.sort_by(f64::total_cmp);
    let honest: Vec<&AttackLine> = lines.iter().filter(|l| l.label.starts_with("honest")).collect();
    let (hc, hw): (u64, u64) = honest
        .iter()
        .fold((0, 0), |s, l| (s.0 + l.claimed_cells, s.1 + l.lost_cells));
    Ok(AttackReport {
        spoofed_paid_share: if claimed == 0 {
            0.0
        } else {
            paid as f64 / claimed as f64
        },
        median_paid_share: shares.get(shares.len() / 2).copied().unwrap_or(0.0),
        attackers_pool_share: attacks.iter().map(|l| l.pool_share).sum(),
        honest_lost_share: if hc == 0 { 0.0 } else { hw as f64 / hc as f64 },
        lines,
    })
}
