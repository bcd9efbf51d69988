//! `verify`, `proof`, `diff`: tampering with a published epoch in any way is detected and named.

use arrow_array::{Array, ArrayRef, Decimal128Array, RecordBatch};
use std::sync::Arc;
use tessera::audit;
use tessera::epoch::Epoch;
use tessera::lake::Lake;
use tessera::pipeline::{self, no_progress, EpochInputs, RunOptions};
use tessera::registry::Registry;
use tessera::simulate::{simulate, SimConfig};
use tessera::tables::Layout;

/// A lake with two epochs (2026-W46, W47) of a simulated fleet, nothing published.
fn fleet_lake() -> (tempfile::TempDir, Lake, Registry) {
    let fleet = simulate(&SimConfig {
        drivers: 6,
        epochs: 2,
        trips: 1,
        minutes: 3,
        ..SimConfig::default()
    });
    let d = tempfile::tempdir().unwrap();
    let lake = Lake::open(d.path()).unwrap();
    for f in &fleet.files {
        lake.ingest(&f.device, &f.name, &f.bytes).unwrap();
    }
    let reg = Registry::parse(fleet.registry_csv.as_bytes(), "sim").unwrap();
    (d, lake, reg)
}

fn published() -> (tempfile::TempDir, Lake, Epoch) {
    let (d, lake, reg) = fleet_lake();
    for e in ["2026-W46", "2026-W47"] {
        pipeline::run(
            &lake,
            &EpochInputs::new(e.parse().unwrap(), 1_000_000_007, reg.clone()),
            &no_progress,
        )
        .unwrap();
    }
    (d, lake, "2026-W47".parse().unwrap())
}

fn rewrite_rewards(lake: &Lake, e: &Epoch, edit: impl Fn(&RecordBatch) -> RecordBatch) {
    let p = lake.epoch_dir(e).join("rewards.parquet");
    let b = tessera::tables::from_parquet(std::fs::read(&p).unwrap().into()).unwrap();
    let edited: Vec<RecordBatch> = b.iter().map(edit).collect();
    std::fs::write(
        &p,
        tessera::tables::to_parquet(&tessera::tables::rewards_schema(), &edited).unwrap(),
    )
    .unwrap();
}

#[test]
fn untouched_epoch_verifies() {
    let (_d, lake, e) = published();
    let r = audit::verify(&lake, &e, None, &no_progress).unwrap();
    assert!(r.ok, "{:?}", r.mismatches);
    assert!(r.checked.contains(&"merkle.json".to_string()));
}

#[test]
fn tampered_amount_fails_naming_file_and_row() {
    let (_d, lake, e) = published();
    rewrite_rewards(&lake, &e, |b| {
        let a = b
            .column_by_name("amount")
            .unwrap()
            .as_any()
            .downcast_ref::<Decimal128Array>()
            .unwrap();
        let mut v: Vec<i128> = a.values().to_vec();
        v[0] += 1;
        let new: ArrayRef = Arc::new(Decimal128Array::from(v).with_precision_and_scale(38, 0).unwrap());
        let mut cols = b.columns().to_vec();
        cols[2] = new; // amount (0 recipient, 1 kind)
        RecordBatch::try_new(b.schema(), cols).unwrap()
    });
    let r = audit::verify(&lake, &e, None, &no_progress).unwrap();
    assert!(!r.ok);
    let m = r
        .mismatches
        .iter()
        .find(|m| m.file == "rewards.parquet" && m.problem.contains("recomputed"))
        .expect("rewards.parquet named");
    assert_eq!((m.published_only.len(), m.recomputed_only.len()), (1, 1), "{m:?}");
    assert!(m.published_only[0].contains("amount="));
    assert!(r
        .mismatches
        .iter()
        .any(|m| m.file == "rewards.parquet" && m.problem.contains("SHA-256")));
}

#[test]
fn missing_recipient_fails() {
    let (_d, lake, e) = published();
    rewrite_rewards(&lake, &e, |b| b.slice(1, b.num_rows() - 1));
    let r = audit::verify(&lake, &e, None, &no_progress).unwrap();
    let m = r
        .mismatches
        .iter()
        .find(|m| m.file == "rewards.parquet" && m.problem.contains("recomputed"))
        .unwrap();
    assert!(m.published_only.is_empty() && m.recomputed_only.len() == 1, "{m:?}");
}

#[test]
fn changed_policy_fails() {
    let (_d, lake, e) = published();
    let p = lake.epoch_dir(&e).join("policy.toml");
    let mut text = std::fs::read_to_string(&p).unwrap();
    text = text.replace("refresh_epochs = 4", "refresh_epochs = 8");
    std::fs::write(&p, text).unwrap();
    let r = audit::verify(&lake, &e, None, &no_progress).unwrap();
    assert!(!r.ok);
    assert!(r.mismatches.iter().any(|m| m.file == "policy.toml"));
    assert!(r
        .mismatches
        .iter()
        .any(|m| m.file == "rewards.parquet" || m.file == "explain.parquet"));
}

#[test]
fn a_foreign_manifest_fails() {
    let (d, lake, e) = published();
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lake.epoch_dir(&e).join("manifest.json")).unwrap()).unwrap();
    m["merkle"]["root"] = serde_json::json!("0x00");
    let other = d.path().join("published-manifest.json");
    std::fs::write(&other, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let r = audit::verify(&lake, &e, Some(&other), &no_progress).unwrap();
    assert!(!r.ok);
    assert!(
        r.mismatches
            .iter()
            .any(|x| x.file == "manifest.json" && x.published_only.iter().any(|l| l.contains("0x00"))),
        "{:?}",
        r.mismatches
    );
}

#[test]
fn every_proof_verifies_against_the_manifest_root() {
    let (_d, lake, e) = published();
    let doc = audit::proof(&lake, &e, None).unwrap();
    // Two honest wallets (car-001 and car-002 share one); the teleporter and the speeder are
    // withheld by the trust detectors.
    assert!(doc.claims.len() >= 2);
    for c in &doc.claims {
        assert!(tessera::merkle::verify_claim(&doc.scheme, &doc.root, c));
    }
    let one = audit::proof(
        &lake,
        &e,
        Some(&doc.claims[1].recipient.to_uppercase().replace("0X", "0x")),
    )
    .unwrap();
    assert_eq!(one.claims, vec![doc.claims[1].clone()]);
    assert!(audit::proof(&lake, &e, Some("0x000000000000000000000000000000000000dead")).is_err());
}

#[test]
fn diff_under_another_policy_conserves_the_pool_and_writes_nothing() {
    let (_d, lake, e) = published();
    let before = std::fs::read(lake.epoch_dir(&e).join("rewards.parquet")).unwrap();
    let lines = audit::diff(
        &lake,
        &e,
        "[novelty]\nrank_weights = [1.0]\ndiscovery_weight = 5.0\n",
        &no_progress,
    )
    .unwrap();
    let sum = |f: fn(&audit::DiffLine) -> &String| lines.iter().map(|l| f(l).parse::<u128>().unwrap()).sum::<u128>();
    assert_eq!(sum(|l| &l.before), 1_000_000_007);
    assert_eq!(sum(|l| &l.after), 1_000_000_007);
    assert!(lines.iter().any(|l| l.delta != "+0"));
    assert_eq!(
        before,
        std::fs::read(lake.epoch_dir(&e).join("rewards.parquet")).unwrap()
    );
}

#[test]
fn solana_scheme_needs_base58_wallets_and_u64_amounts() {
    let fleet = simulate(&SimConfig {
        drivers: 4,
        epochs: 1,
        trips: 1,
        minutes: 2,
        ..SimConfig::default()
    });
    let d = tempfile::tempdir().unwrap();
    let lake = Lake::open(d.path()).unwrap();
    for f in &fleet.files {
        lake.ingest(&f.device, &f.name, &f.bytes).unwrap();
    }
    let policy = "[rewards]\nmerkle = \"solana-sha256-v1\"\n".to_string();
    // EVM wallets under the Solana scheme: a clear error naming the wallet.
    let evm = Registry::parse(fleet.registry_csv.as_bytes(), "sim").unwrap();
    let err = pipeline::compute(
        &lake,
        &EpochInputs {
            policy_text: policy.clone(),
            ..EpochInputs::new("2026-W46".parse().unwrap(), 1000, evm)
        },
        &no_progress,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("base58"), "{err}");
    // Base58 wallets work, and amounts above u64 are refused.
    let keys = [
        "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T",
        "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin",
        "SysvarC1ock11111111111111111111111111111111",
    ];
    let csv: String = ["car-001", "car-002", "car-003"]
        .iter()
        .zip(keys)
        .map(|(d, k)| format!("{d},{k}\n"))
        .collect();
    let sol = Registry::parse(csv.as_bytes(), "sol").unwrap();
    let ok = pipeline::run(
        &lake,
        &EpochInputs {
            policy_text: policy.clone(),
            ..EpochInputs::new("2026-W46".parse().unwrap(), 1000, sol.clone())
        },
        &no_progress,
    )
    .unwrap();
    let manifest = std::fs::read(lake.epoch_dir(&"2026-W46".parse().unwrap()).join("manifest.json")).unwrap();
    assert_eq!(ok.sha256["manifest.json"], tessera::lake::sha256_hex(&manifest));
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(m["merkle"]["scheme"], "solana-sha256-v1");
    let doc = audit::proof(&lake, &"2026-W46".parse().unwrap(), None).unwrap();
    assert!(doc
        .claims
        .iter()
        .all(|c| tessera::merkle::verify_claim("solana-sha256-v1", &doc.root, c)));
    let big = pipeline::compute(
        &lake,
        &EpochInputs {
            policy_text: policy,
            ..EpochInputs::new("2026-W46".parse().unwrap(), u128::from(u64::MAX) * 4, sol)
        },
        &no_progress,
    )
    .unwrap_err()
    .to_string();
    assert!(big.contains("does not fit in u64"), "{big}");
}

// Parquet layouts of an epoch's outputs: an epoch published in an older layout keeps its bytes
// (it verifies, and a run without `--replace` is a no-op); `--replace` rewrites it in the
// current layout with the same rows and the same money.

fn epoch() -> Epoch {
    "2026-W46".parse().unwrap()
}

fn file(lake: &Lake, name: &str) -> Vec<u8> {
    std::fs::read(lake.epoch_dir(&epoch()).join(name)).unwrap()
}

fn rows(bytes: Vec<u8>) -> Vec<arrow_array::RecordBatch> {
    tessera::tables::from_parquet(bytes.into()).unwrap()
}

#[test]
fn rule_an_epoch_published_in_layout_1_verifies_reruns_unchanged_and_is_replaced_with_the_same_rows() {
    assert_ne!(Layout::CURRENT, Layout::V1);
    let (_d, lake, reg) = fleet_lake();
    let now = EpochInputs::new(epoch(), 1_000_000_007, reg);
    let old = EpochInputs {
        layout: Layout::V1,
        ..now.clone()
    };
    assert!(!pipeline::run(&lake, &old, &no_progress).unwrap().unchanged);
    let manifest = String::from_utf8(file(&lake, "manifest.json")).unwrap();
    assert!(!manifest.contains("\"layout\""), "layout 1 manifests predate the field");
    let before: Vec<Vec<u8>> = ["explain.parquet", "coverage.parquet", "rewards.parquet", "merkle.json"]
        .iter()
        .map(|n| file(&lake, n))
        .collect();

    let r = audit::verify(&lake, &epoch(), None, &no_progress).unwrap();
    assert!(r.ok, "{:?}", r.mismatches);
    // This build's inputs name the current layout; the published epoch is recomputed in its own.
    let again = pipeline::run_with(&lake, &now, RunOptions::default(), &no_progress).unwrap();
    assert!(again.unchanged);
    assert_eq!(file(&lake, "explain.parquet"), before[0]);

    let replace = RunOptions {
        replace: true,
        ..RunOptions::default()
    };
    let replaced = pipeline::run_with(&lake, &now, replace, &no_progress).unwrap();
    assert!(!replaced.unchanged);
    let manifest = String::from_utf8(file(&lake, "manifest.json")).unwrap();
    assert!(manifest.contains("\"layout\": 2"), "{manifest}");
    for (i, name) in ["explain.parquet", "coverage.parquet"].iter().enumerate() {
        let after = file(&lake, name);
        assert_ne!(after, before[i], "{name}: other bytes");
        assert_eq!(rows(after), rows(before[i].clone()), "{name}: the same rows");
    }
    assert_eq!(file(&lake, "rewards.parquet"), before[2], "the same payouts");
    assert_eq!(file(&lake, "merkle.json"), before[3], "the same root");
    let r = audit::verify(&lake, &epoch(), None, &no_progress).unwrap();
    assert!(r.ok, "{:?}", r.mismatches);
}

#[test]
fn rule_a_manifest_naming_a_layout_this_build_does_not_know_is_refused_naming_it() {
    let (_d, lake, reg) = fleet_lake();
    pipeline::run(&lake, &EpochInputs::new(epoch(), 1000, reg), &no_progress).unwrap();
    let p = lake.epoch_dir(&epoch()).join("manifest.json");
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains("\"layout\": 2"), "{text}");
    std::fs::write(&p, text.replace("\"layout\": 2", "\"layout\": 7")).unwrap();
    let e = audit::verify(&lake, &epoch(), None, &no_progress)
        .unwrap_err()
        .to_string();
    assert!(e.contains("layout 7") && e.contains("manifest.json"), "{e}");
}
