//! The SQL session on a real lake: every table registered, epoch pruning, H3 functions on lake
//! data, and the README's analyst queries.

use datafusion::arrow::util::pretty::pretty_format_batches;
use tessera::lake::Lake;
use tessera::pipeline::{self, EpochInputs};
use tessera::registry::Registry;
use tessera::simulate::{simulate, SimConfig};

fn lake() -> tempfile::TempDir {
    lake_in(tessera::tables::Layout::CURRENT)
}

/// The simulated two-epoch lake, W46 written in `w46` (W47 in the current layout).
fn lake_in(w46: tessera::tables::Layout) -> tempfile::TempDir {
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
    for e in ["2026-W46", "2026-W47"] {
        let mut inputs = EpochInputs::new(e.parse().unwrap(), 1_000_000, reg.clone());
        if e == "2026-W46" {
            inputs.layout = w46;
        }
        pipeline::run(&lake, &inputs, &pipeline::no_progress).unwrap();
    }
    d
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn rows(ctx: &datafusion::prelude::SessionContext, q: &str) -> Vec<String> {
    let b = ctx
        .sql(q)
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    pretty_format_batches(&b)
        .unwrap()
        .to_string()
        .lines()
        .skip(3)
        .filter(|l| !l.starts_with('+'))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect()
}

#[test]
fn every_table_is_registered_with_its_columns() {
    let d = lake();
    rt().block_on(async {
        let ctx = crate::session(d.path()).await.unwrap();
        let tables = crate::describe(&ctx).await.unwrap();
        let names: Vec<&str> = tables.iter().map(|t| t.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "fixes",
                "sources",
                "ingest_rejections",
                "imu",
                "rewards",
                "explain",
                "visits",
                "rejections",
                "coverage",
                "flags",
                "trust",
                "regions",
                "places",
                "manifests"
            ]
        );
        for (name, cols) in &tables {
            if ["rewards", "explain", "visits", "rejections", "coverage", "manifests"].contains(&name.as_str()) {
                assert_eq!(cols[0].0, "epoch", "{name}");
            }
        }
        let n: u64 = rows(&ctx, "SELECT count(*) FROM fixes").await[0].parse().unwrap();
        let from_sources: u64 = rows(&ctx, "SELECT sum(fixes) FROM sources").await[0].parse().unwrap();
        assert_eq!(n, from_sources);
        assert_eq!(
            rows(&ctx, "SELECT epoch, allocated FROM manifests ORDER BY epoch").await,
            ["2026-W46 | 1000000", "2026-W47 | 1000000"]
        );
        assert_eq!(
            rows(
                &ctx,
                "SELECT epoch, sum(amount) FROM rewards GROUP BY epoch ORDER BY epoch"
            )
            .await,
            ["2026-W46 | 1000000", "2026-W47 | 1000000"]
        );
    });
}

#[test]
fn where_epoch_reads_only_that_epochs_file() {
    let d = lake();
    rt().block_on(async {
        let ctx = crate::session(d.path()).await.unwrap();
        let plan = rows(
            &ctx,
            "EXPLAIN SELECT recipient, amount FROM rewards WHERE epoch = '2026-W47'",
        )
        .await
        .join("\n");
        assert!(plan.contains("2026-W47/rewards.parquet"), "{plan}");
        assert!(!plan.contains("2026-W46/rewards.parquet"), "W46 is scanned:\n{plan}");
        let all = rows(&ctx, "EXPLAIN SELECT * FROM rewards").await.join("\n");
        assert!(all.contains("2026-W46/rewards.parquet") && all.contains("2026-W47/rewards.parquet"));
    });
}

#[test]
fn h3_functions_work_on_lake_columns() {
    let d = lake();
    rt().block_on(async {
        let ctx = crate::session(d.path()).await.unwrap();
        // Every explained cell is where h3_latlng_to_cell puts its own centre.
        let bad = rows(&ctx, "SELECT count(*) FROM explain WHERE h3_latlng_to_cell(h3_cell_to_lat(cell), h3_cell_to_lng(cell), 12) <> cell OR h3_cell_to_string(cell) <> cell_id OR NOT h3_is_valid(cell)").await;
        assert_eq!(bad, ["0"]);
        let parents = rows(&ctx, "SELECT count(DISTINCT h3_cell_to_parent(cell, 7)) FROM coverage WHERE epoch = '2026-W47'").await;
        assert!(parents[0].parse::<u64>().unwrap() >= 1);
    });
}

/// Layouts 4 and 5 write explain's multipliers and points as DECIMAL(18,6); SQL reads every layout
/// as the table's Decimal128(38,6), with the points the rewards were paid from.
#[test]
fn rule_narrow_decimals_explain_reads_as_one_type_across_layouts() {
    let d = lake_in(tessera::tables::Layout::V3);
    let m = |e: &str| std::fs::read_to_string(d.path().join(format!("epochs/{e}/manifest.json"))).unwrap();
    let current = format!("\"layout\": {}", tessera::tables::Layout::CURRENT.number());
    assert!(m("2026-W46").contains("\"layout\": 3") && m("2026-W47").contains(&current));
    rt().block_on(async {
        let ctx = crate::session(d.path()).await.unwrap();
        let q = "SELECT e.epoch, min(arrow_typeof(e.points)), max(arrow_typeof(e.rank_w)), sum(e.points) = r.points \
                 FROM explain e JOIN (SELECT epoch, sum(points) AS points FROM rewards WHERE kind = 'base' GROUP BY epoch) r \
                 ON e.epoch = r.epoch GROUP BY e.epoch, r.points ORDER BY e.epoch";
        let typed = "Decimal128(38, 6) | Decimal128(38, 6) | true";
        assert_eq!(rows(&ctx, q).await, [format!("2026-W46 | {typed}"), format!("2026-W47 | {typed}")]);
    });
}

/// The three analyst queries of the README, run as written.
#[test]
fn readme_analyst_queries_run_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let block = readme
        .split("<!-- analyst-queries -->")
        .nth(1)
        .expect("README marks the analyst queries");
    let queries: Vec<String> = block
        .split("```sql")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().trim().to_string())
        .collect();
    assert_eq!(queries.len(), 3, "{queries:?}");
    let d = lake();
    rt().block_on(async {
        let ctx = crate::session(d.path()).await.unwrap();
        for q in &queries {
            let r = rows(&ctx, q).await;
            assert!(!r.is_empty(), "{q} returned nothing");
        }
    });
}

#[test]
fn an_empty_lake_has_every_table_and_no_rows() {
    let d = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let ctx = crate::session(d.path()).await.unwrap();
        for t in [
            "fixes",
            "rewards",
            "explain",
            "visits",
            "rejections",
            "coverage",
            "manifests",
            "sources",
            "ingest_rejections",
            "imu",
        ] {
            assert_eq!(rows(&ctx, &format!("SELECT count(*) FROM {t}")).await, ["0"], "{t}");
        }
    });
}

#[test]
fn rule_fixes_of_a_source_whose_metadata_never_landed_are_not_rows() {
    let d = lake();
    let root = d.path();
    let before = rt().block_on(async {
        let ctx = crate::session(root).await.unwrap();
        rows(&ctx, "SELECT count(*) FROM fixes").await
    });
    // What a writer killed between its data files and its metadata leaves behind.
    let any = std::fs::read_dir(root.join("fixes"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::copy(&any, root.join(format!("fixes/{}.parquet", "cd".repeat(32)))).unwrap();
    let after = rt().block_on(async {
        let ctx = crate::session(root).await.unwrap();
        (
            rows(&ctx, "SELECT count(*) FROM fixes").await,
            rows(&ctx, "SELECT sum(fixes) FROM sources").await,
        )
    });
    assert_eq!(after.0, before);
    assert_eq!(after.0, after.1, "fixes rows = fixes of the committed sources");
}
