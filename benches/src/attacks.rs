//! `tessera-attacks`: the labelled adversarial fleet (`tessera simulate --attacks`) through one
//! epoch with the trust detectors off (policy v1) and on: per attack the claimed km, the share of
//! it still paid and the pool share; for the honest controls what they lost. Deterministic (a
//! pure function of the seed), so the figures are the same on every machine.
//!
//! `tessera-attacks [--seed N] [--json]`

use tessera::lake::Lake;
use tessera::registry::Registry;
use tessera::simulate::{attack_report, attacks};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seed = args
        .iter()
        .position(|a| a == "--seed")
        .and_then(|i| args.get(i + 1))
        .map_or(7, |s| s.parse().expect("--seed N"));
    let json = args.iter().any(|a| a == "--json");
    let epoch = "2026-W47".parse().expect("epoch");
    let fleet = attacks::attack_fleet(seed, epoch);
    let dir = tempfile::tempdir().expect("temp dir");
    let lake = Lake::open(dir.path()).expect("lake");
    fleet.ingest(&lake);
    let reg = Registry::parse(fleet.registry_csv.as_bytes(), "attacks").expect("registry");
    let t0 = std::time::Instant::now();
    let r = attack_report::evaluate(&lake, epoch, &reg, &fleet.labels, 1_000_000_000_000).expect("epoch");
    if json {
        println!("{}", serde_json::to_string_pretty(&r).expect("json"));
        return;
    }
    println!(
        "seed {seed}, epoch {epoch}, {} devices, {} files; two epochs computed in {:.1} s",
        fleet.labels.len(),
        fleet.files.len(),
        t0.elapsed().as_secs_f64()
    );
    println!(
        "| label | devices | claimed km (v1) | paid with trust | pool share v1 → trust | withheld cells | lost cells |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for l in &r.lines {
        println!(
            "| {} | {} | {:.1} | {:.1} % | {:.1} % → {:.1} % | {} | {} |",
            l.label,
            l.devices,
            l.claimed_km,
            100.0 * l.paid_share,
            100.0 * l.pool_share_v1,
            100.0 * l.pool_share,
            l.withheld_cells,
            l.lost_cells
        );
    }
    println!(
        "spoofed km paid: {:.2} % (median per attack {:.2} %); attackers' pool share {:.2} %; honest km lost {:.3} %",
        100.0 * r.spoofed_paid_share,
        100.0 * r.median_paid_share,
        100.0 * r.attackers_pool_share,
        100.0 * r.honest_lost_share
    );
}
