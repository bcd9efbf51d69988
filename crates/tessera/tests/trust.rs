//! The trust layer end to end on simulated fleets: honest drivers keep their rewards, the
//! dishonest ones are withheld with evidence, and the evidence is deterministic.

use std::collections::{BTreeMap, BTreeSet};
use tessera::lake::{Lake, Upload};
use tessera::pipeline::{compute, no_progress, EpochInputs};
use tessera::registry::Registry;
use tessera::simulate::{simulate, SimConfig};
use tessera::tables;

fn flags(files: &BTreeMap<String, Vec<u8>>) -> Vec<tables::FlagRow> {
    tables::from_parquet(files["flags.parquet"].clone().into())
        .unwrap()
        .iter()
        .flat_map(|b| tables::flags_rows(b).unwrap())
        .collect()
}

#[test]
fn rule_the_sample_fleets_dishonest_drivers_are_withheld_and_honest_ones_are_not() {
    let cfg = SimConfig::default();
    let fleet = simulate(&cfg);
    let d = tempfile::tempdir().unwrap();
    let lake = Lake::open(d.path()).unwrap();
    let received = cfg.start.next().next().start_ms();
    let uploads: Vec<Upload> = fleet
        .files
        .iter()
        .map(|f| Upload::new(&f.device, &f.name, &f.bytes).received_at(received))
        .collect();
    lake.ingest_batch(&uploads);
    let reg = Registry::parse(fleet.registry_csv.as_bytes(), "sim").unwrap();
    let out = compute(&lake, &EpochInputs::new(cfg.start.next(), 1_000_000, reg), &no_progress).unwrap();
    let rows = flags(&out.files);
    for r in &rows {
        eprintln!(
            "{} {} {} {} | {} | {}",
            r.device, r.detector, r.effect, r.measured, r.threshold, r.detail
        );
    }
    let cheating: BTreeSet<&str> = rows
        .iter()
        .filter(|r| matches!(r.effect.as_str(), "withhold_segment" | "withhold_window"))
        .map(|r| r.device.as_str())
        .collect();
    let roles: BTreeMap<&str, &str> = fleet.roles.iter().map(|(d, r)| (d.as_str(), *r)).collect();
    for (device, role) in &roles {
        let dishonest = role.starts_with("dishonest");
        assert_eq!(cheating.contains(device), dishonest, "{device} ({role})");
    }
}

#[test]
fn rule_attacks_earn_almost_nothing_and_honest_drivers_lose_almost_nothing() {
    use tessera::simulate::{attack_report, attacks};
    let epoch = "2026-W47".parse().unwrap();
    let fleet = attacks::attack_fleet(7, epoch);
    let d = tempfile::tempdir().unwrap();
    let lake = Lake::open(d.path()).unwrap();
    fleet.ingest(&lake);
    let reg = Registry::parse(fleet.registry_csv.as_bytes(), "attacks").unwrap();
    let r = attack_report::evaluate(&lake, epoch, &reg, &fleet.labels, 1_000_000_000).unwrap();
    for l in &r.lines {
        eprintln!(
            "{:<20} dev {:>2} claimed {:>6} cells {:>7.1} km  paid {:>5.1} %  pool {:>5.1} % (v1 {:>5.1} %)  withheld {} lost {}",
            l.label,
            l.devices,
            l.claimed_cells,
            l.claimed_km,
            100.0 * l.paid_share,
            100.0 * l.pool_share,
            100.0 * l.pool_share_v1,
            l.withheld_cells,
            l.lost_cells
        );
    }
    eprintln!(
        "spoofed paid {:.2} %, median {:.2} %, attackers' pool {:.2} %, honest lost {:.3} %",
        100.0 * r.spoofed_paid_share,
        100.0 * r.median_paid_share,
        100.0 * r.attackers_pool_share,
        100.0 * r.honest_lost_share
    );
    assert!(r.spoofed_paid_share <= 0.05, "{}", r.spoofed_paid_share);
    assert!(r.median_paid_share <= 0.05, "{}", r.median_paid_share);
    assert!(r.honest_lost_share <= 0.01, "{}", r.honest_lost_share);
}
