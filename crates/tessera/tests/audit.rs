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
/// Six drivers' three-minute trips in `epochs` weeks from 2026-W46.
fn fleet(epochs: u32) -> tessera::simulate::Fleet {
    simulate(&SimConfig {
        drivers: 6,
        epochs,
        trips: 1,
        minutes: 3,
        ..SimConfig::default()
    })
}

fn fleet_lake() -> (tempfile::TempDir, Lake, Registry) {
    let fleet = fleet(2);
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
fn rule_a_published_epoch_keeps_its_layout_through_verify_reruns_and_replace_while_new_epochs_get_the_current() {
    assert_ne!(Layout::CURRENT, Layout::V1);
    let (_d, lake, reg) = fleet_lake();
    let now = EpochInputs::new(epoch(), 1_000_000_007, reg.clone());
    let old = EpochInputs {
        layout: Layout::V1,
        ..now.clone()
    };
    assert!(!pipeline::run(&lake, &old, &no_progress).unwrap().unchanged);
    let manifest = String::from_utf8(file(&lake, "manifest.json")).unwrap();
    assert!(!manifest.contains("\"layout\""), "layout 1 manifests predate the field");
    let names = ["explain.parquet", "coverage.parquet", "rewards.parquet", "merkle.json"];
    let before: Vec<Vec<u8>> = names.iter().map(|n| file(&lake, n)).collect();
    let r = audit::verify(&lake, &epoch(), None, &no_progress).unwrap();
    assert!(r.ok, "{:?}", r.mismatches);
    // This build's inputs name the current layout; the published epoch is recomputed in its
    // own, with and without --replace.
    let replace = RunOptions {
        replace: true,
        ..RunOptions::default()
    };
    for opts in [RunOptions::default(), replace] {
        assert!(pipeline::run_with(&lake, &now, opts, &no_progress).unwrap().unchanged);
    }
    // The next epoch is new: the current layout; its prior state is the published coverage.
    let next: Epoch = "2026-W47".parse().unwrap();
    pipeline::run(&lake, &EpochInputs::new(next, 1000, reg.clone()), &no_progress).unwrap();
    let m = std::fs::read_to_string(lake.epoch_dir(&next).join("manifest.json")).unwrap();
    assert!(m.contains(&format!("\"layout\": {}", Layout::CURRENT.number())), "{m}");
    // Replacing the old epoch with another pool keeps its layout, so the next one still verifies.
    let more = EpochInputs {
        pool: 2_000_000_011,
        ..old.clone()
    };
    let replaced = pipeline::run_with(
        &lake,
        &EpochInputs {
            layout: Layout::CURRENT,
            ..more
        },
        replace,
        &no_progress,
    );
    assert!(!replaced.unwrap().unchanged);
    assert!(!String::from_utf8(file(&lake, "manifest.json"))
        .unwrap()
        .contains("\"layout\""));
    assert_eq!(file(&lake, "coverage.parquet"), before[1]);
    for e in [epoch(), next] {
        let r = audit::verify(&lake, &e, None, &no_progress).unwrap();
        assert!(r.ok, "{e}: {:?}", r.mismatches);
    }
}

/// One more source: a fleet file with every seventh line's checksum broken (rejected at ingest,
/// each naming its line), so the epoch's `rejections.parquet` has rows in every layout.
fn with_rejected_lines(lake: &Lake) {
    let fleet = simulate(&SimConfig {
        drivers: 1,
        epochs: 1,
        trips: 1,
        minutes: 3,
        seed: 99,
        ..SimConfig::default()
    });
    let f = &fleet.files[0];
    let text = String::from_utf8(f.bytes.clone()).unwrap();
    let broken: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| match (i % 7, l.rfind('*')) {
            (3, Some(star)) => format!("{}*00\n", &l[..star]),
            _ => format!("{l}\n"),
        })
        .collect();
    assert_ne!(broken, text);
    lake.ingest(&f.device, "broken.nmea", broken.as_bytes()).unwrap();
}

#[test]
fn rule_each_layout_writes_the_same_rows_and_the_same_money_in_its_own_bytes() {
    let run = |layout| {
        let (d, lake, reg) = fleet_lake();
        with_rejected_lines(&lake);
        let inputs = EpochInputs {
            layout,
            ..EpochInputs::new(epoch(), 1_000_000_007, reg)
        };
        pipeline::run(&lake, &inputs, &no_progress).unwrap();
        let files: Vec<Vec<u8>> = [
            "explain.parquet",
            "coverage.parquet",
            "rejections.parquet",
            "rewards.parquet",
            "merkle.json",
        ]
        .iter()
        .map(|n| file(&lake, n))
        .collect();
        drop(d);
        files
    };
    let (v1, v2, v3, v4, v5) = (
        run(Layout::V1),
        run(Layout::V2),
        run(Layout::V3),
        run(Layout::V4),
        run(Layout::V5),
    );
    let schemas = [
        tessera::tables::explain_schema(),
        tessera::tables::coverage_schema(),
        tessera::tables::rejections_schema(),
    ];
    // Every layout's rows, read as the table's schema (layout 4's 18-digit decimals widened).
    let logical = |bytes: &Vec<u8>, i: usize| -> Vec<arrow_array::RecordBatch> {
        let b = rows(bytes.clone());
        b.iter()
            .map(|b| tessera::tables::conform(b, &schemas[i]).unwrap())
            .collect()
    };
    for (i, name) in ["explain", "coverage", "rejections"].iter().enumerate() {
        if i < 2 {
            assert_ne!(v1[i], v2[i], "{name}: layout 2 in other bytes");
        }
        assert_eq!(rows(v1[i].clone()), rows(v2[i].clone()), "{name}: the same rows");
        assert_eq!(rows(v2[i].clone()), rows(v3[i].clone()), "{name}: the same rows");
        assert_eq!(logical(&v3[i], i), logical(&v4[i], i), "{name}: the same rows");
        assert_eq!(logical(&v4[i], i), logical(&v5[i], i), "{name}: the same rows");
        // Layout 5 delta-encodes cell ids (explain, coverage) and rejections' times and lines.
        assert_ne!(v4[i], v5[i], "{name}: layout 5 in other bytes");
    }
    // Layouts 3 and 4 change only the table with fixed-point columns: explain.
    assert_ne!(v2[0], v3[0], "explain: layout 3 in other bytes");
    assert_ne!(v3[0], v4[0], "explain: layout 4 in other bytes");
    assert_eq!(
        (&v2[1..3], &v3[1..3]),
        (&v3[1..3], &v4[1..3]),
        "coverage and rejections: no fixed-point column, layout 2's bytes"
    );
    let column = |bytes: &[u8], col: &str| {
        use parquet::file::reader::FileReader;
        let r = parquet::file::reader::SerializedFileReader::new(bytes::Bytes::from(bytes.to_vec())).unwrap();
        let rg = r.metadata().row_group(0);
        rg.columns()
            .iter()
            .find(|c| c.column_path().string() == col)
            .unwrap()
            .clone()
    };
    let stats = |bytes: &[u8], col: &str| column(bytes, col).statistics().is_some();
    assert!(
        stats(&v2[0], "points") && !stats(&v3[0], "points") && !stats(&v4[0], "points"),
        "layouts 3 and 4: no statistics for points"
    );
    for v in [&v3, &v4] {
        assert!(
            stats(&v[0], "cell") && stats(&v[0], "first_time"),
            "the other columns keep theirs"
        );
    }
    use parquet::basic::Type as Physical;
    for w in ["rank_w", "freshness_w", "quality_w", "region_w", "trust_w", "points"] {
        assert_eq!(column(&v3[0], w).column_type(), Physical::FIXED_LEN_BYTE_ARRAY, "{w}");
        assert_eq!(
            column(&v4[0], w).column_type(),
            Physical::INT64,
            "layout 4: {w} on INT64"
        );
    }
    let back = rows(v4[0].clone());
    let points = back[0].schema().field_with_name("points").unwrap().data_type().clone();
    assert_eq!(points, arrow_schema::DataType::Decimal128(18, 6));
    let encodings = |bytes: &[u8], col: &str| column(bytes, col).encodings().collect::<Vec<_>>();
    use parquet::basic::Encoding;
    for (i, col) in [(0, "cell_id"), (1, "cell_id")] {
        assert!(encodings(&v5[i], col).contains(&Encoding::DELTA_BYTE_ARRAY), "{col}");
        assert!(!encodings(&v4[i], col).contains(&Encoding::DELTA_BYTE_ARRAY), "{col}");
    }
    assert!(
        rows(v5[2].clone()).iter().map(|b| b.num_rows()).sum::<usize>() > 10,
        "rejections"
    );
    for col in ["time", "line"] {
        assert!(
            encodings(&v5[2], col).contains(&Encoding::DELTA_BINARY_PACKED),
            "rejections {col}"
        );
        assert!(
            !encodings(&v4[2], col).contains(&Encoding::DELTA_BINARY_PACKED),
            "rejections {col}"
        );
    }
    assert_eq!(
        column(&v5[0], "points").column_type(),
        Physical::INT64,
        "layout 5 keeps 4's decimals"
    );
    for v in [&v2, &v3, &v4, &v5] {
        assert_eq!(v1[3], v[3], "the same payouts");
        assert_eq!(v1[4], v[4], "the same merkle root and proofs");
    }
}

#[test]
fn rule_a_manifest_naming_a_layout_this_build_does_not_know_is_refused_naming_it() {
    let (_d, lake, reg) = fleet_lake();
    pipeline::run(&lake, &EpochInputs::new(epoch(), 1000, reg), &no_progress).unwrap();
    let p = lake.epoch_dir(&epoch()).join("manifest.json");
    let text = std::fs::read_to_string(&p).unwrap();
    let current = format!("\"layout\": {}", Layout::CURRENT.number());
    assert!(text.contains(&current), "{text}");
    std::fs::write(&p, text.replace(&current, "\"layout\": 7")).unwrap();
    let e = audit::verify(&lake, &epoch(), None, &no_progress)
        .unwrap_err()
        .to_string();
    assert!(e.contains("layout 7") && e.contains("manifest.json"), "{e}");
    // A run of that epoch is refused the same way, before anything is computed or written.
    let reg = Registry::parse(b"device_id,wallet\n", "r").unwrap();
    let e = pipeline::run(&lake, &EpochInputs::new(epoch(), 1000, reg), &no_progress)
        .unwrap_err()
        .to_string();
    assert!(e.contains("layout 7") && e.contains("manifest.json"), "{e}");
    let staging = std::fs::read_dir(lake.root().join("epochs"))
        .unwrap()
        .filter(|d| d.as_ref().unwrap().file_name().to_string_lossy().starts_with(".tmp-"))
        .count();
    assert_eq!(staging, 0, "no staging directory left");
}

/// `sentence` (`$...*hh`) with field `i` (0 = the sentence type) replaced and the checksum redone.
fn with_field(sentence: &str, i: usize, value: &str) -> String {
    let body = &sentence[1..sentence.rfind('*').unwrap()];
    let mut fields: Vec<String> = body.split(',').map(str::to_string).collect();
    fields[i] = value.to_string();
    let body = fields.join(",");
    let sum = body.bytes().fold(0u8, |a, b| a ^ b);
    format!("${body}*{sum:02X}")
}

#[test]
fn rule_an_epoch_reads_no_altitude_course_or_talker() {
    // Two lakes of the same drives, one with every altitude, course and talker changed: an
    // epoch reads only `EPOCH_FIX_COLUMNS`, so every output keyed by device (not by the
    // uploads' hashes, which differ) is the same bytes. A rule that comes to use one of those
    // fields fails here until its column is read.
    let fleet = fleet(1);
    let reg = Registry::parse(fleet.registry_csv.as_bytes(), "sim").unwrap();
    let e = epoch();
    let mut changed = 0;
    let mut run = |edit: bool| {
        let d = tempfile::tempdir().unwrap();
        let lake = Lake::open(d.path()).unwrap();
        for f in &fleet.files {
            // Camera files (MP4) as they are: their telemetry has no altitude, course or talker.
            let Ok(text) = std::str::from_utf8(&f.bytes) else {
                lake.ingest(&f.device, &f.name, &f.bytes).unwrap();
                continue;
            };
            let text: String = text
                .lines()
                .enumerate()
                .map(|(n, l)| {
                    let l = match (edit, l.get(3..6)) {
                        (true, Some("GGA")) => with_field(l, 9, &format!("{:.1}", 100.0 + n as f64 * 0.7)),
                        (true, Some("RMC")) => with_field(l, 8, &format!("{:.1}", (n * 37 % 360) as f64)),
                        _ => l.to_string(),
                    };
                    match (edit, l.starts_with("$GP")) {
                        (true, true) => {
                            changed += 1;
                            with_field(&l.replacen("$GP", "$GN", 1), 0, &format!("GN{}", &l[3..6]))
                        }
                        _ => l,
                    }
                })
                .map(|l| l + "\n")
                .collect();
            lake.ingest(&f.device, &f.name, text.as_bytes()).unwrap();
        }
        pipeline::run(&lake, &EpochInputs::new(e, 1_000_000_007, reg.clone()), &no_progress).unwrap();
        let dir = lake.epoch_dir(&e);
        let fixes: Vec<tessera::fix::Fix> = lake
            .sources()
            .unwrap()
            .iter()
            .flat_map(|m| lake.read_fixes(&m.hash).unwrap().0)
            .collect();
        // Rejections name their upload (its hash differs): every other column, row by row, as
        // text, in order of the text (uploads are taken in hash order).
        let rejections = rows(std::fs::read(dir.join("rejections.parquet")).unwrap());
        let mut rejected: Vec<String> = Vec::new();
        for b in &rejections {
            let o = arrow_cast::display::FormatOptions::default();
            let cols: Vec<_> = (0..b.num_columns())
                .filter(|&j| b.schema().field(j).name() != "source")
                .map(|j| arrow_cast::display::ArrayFormatter::try_new(b.column(j).as_ref(), &o).unwrap())
                .collect();
            rejected.extend((0..b.num_rows()).map(|i| {
                let r: Vec<String> = cols.iter().map(|c| c.value(i).to_string()).collect();
                r.join("|")
            }));
        }
        rejected.sort();
        let files: Vec<Vec<u8>> = [
            "explain.parquet",
            "coverage.parquet",
            "rewards.parquet",
            "merkle.json",
            "trust.parquet",
        ]
        .iter()
        .map(|n| std::fs::read(dir.join(n)).unwrap())
        .collect();
        (d, fixes, files, rejected)
    };
    let (_a, plain, a, rejected_a) = run(false);
    let (_b, edited, b, rejected_b) = run(true);
    assert!(changed > 300, "{changed} sentences edited");
    // The edits reached the lake: the fixes differ in those fields and only in those.
    // (Lines that do not start with the sentence, as in Android's logs, stay as they are.)
    let talkers = |v: &[tessera::fix::Fix], t: &[u8; 2]| v.iter().filter(|f| f.talker == *t).count();
    let gn = talkers(&edited, b"GN");
    assert!(gn > 300 && talkers(&plain, b"GN") == 0, "{gn}");
    assert_eq!(talkers(&plain, b"GP"), talkers(&edited, b"GP") + gn);
    // The same fixes by time and position, with other altitudes and courses.
    let sorted = |v: &[tessera::fix::Fix]| {
        type Key = (i64, u64, u64);
        let mut k: Vec<(Key, Option<f32>, Option<f32>)> = v
            .iter()
            .map(|f| ((f.time_ms, f.lat.to_bits(), f.lon.to_bits()), f.alt_m, f.course_deg))
            .collect();
        k.sort_unstable_by_key(|x| x.0);
        k
    };
    let (p, q) = (sorted(&plain), sorted(&edited));
    assert!(p.iter().map(|x| x.0).eq(q.iter().map(|x| x.0)));
    let other = p.iter().zip(&q).filter(|(x, y)| x.1 != y.1 && x.2 != y.2).count();
    assert!(other > 300, "{other} fixes with another altitude and course");
    assert!(rows(a[0].clone()).iter().map(|b| b.num_rows()).sum::<usize>() > 100);
    for (n, (x, y)) in ["explain", "coverage", "rewards", "merkle", "trust"]
        .iter()
        .zip(a.iter().zip(&b))
    {
        assert!(x == y, "{n}: other bytes when only altitude, course and talker differ");
    }
    assert!(!rejected_a.is_empty());
    assert!(
        rejected_a == rejected_b,
        "rejections differ beyond their uploads' hashes"
    );
}
