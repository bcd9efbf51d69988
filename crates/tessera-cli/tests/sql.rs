//! `tessera sql`, `tessera tables` and `tessera export cells` on the demo lake.
#![cfg(feature = "sql")]

use std::process::Command;

fn ok(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_tessera")).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "tessera {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn sql_tables_and_export_on_the_demo_lake() {
    let d = tempfile::tempdir().unwrap();
    let lake = d.path().join("lake");
    let l = lake.to_str().unwrap();
    ok(&["demo", "--lake", l]);
    let tables = ok(&["tables", "--lake", l]);
    for t in [
        "fixes",
        "sources",
        "rewards",
        "explain",
        "visits",
        "rejections",
        "coverage",
        "manifests",
        "ingest_rejections",
        "imu",
    ] {
        assert!(tables.lines().any(|x| x == t), "{t} missing:\n{tables}");
    }
    let table = ok(&[
        "sql",
        "--lake",
        l,
        "SELECT epoch, sum(amount) AS total FROM rewards WHERE kind = 'base' GROUP BY epoch ORDER BY epoch",
    ]);
    assert!(table.contains("| 2026-W46 | 1000000000000 |"), "{table}");
    let csv = ok(&[
        "sql",
        "--lake",
        l,
        "--format",
        "csv",
        "SELECT h3_resolution(cell) AS r, count(*) AS n FROM coverage WHERE epoch = '2026-W47' GROUP BY 1",
    ]);
    assert!(csv.starts_with("r,n\n12,"), "{csv}");
    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "sql",
        "--lake",
        l,
        "--format",
        "json",
        "SELECT device, count(*) AS n FROM rejections WHERE reason = 'teleport' GROUP BY device ORDER BY device",
    ]))
    .unwrap();
    assert_eq!(json[0]["device"], "car-008");
    let pq = d.path().join("out.parquet");
    ok(&[
        "sql",
        "--lake",
        l,
        "--format",
        "parquet",
        "--output",
        pq.to_str().unwrap(),
        "SELECT * FROM manifests",
    ]);
    let back = tessera::tables::from_parquet(std::fs::read(&pq).unwrap().into()).unwrap();
    assert_eq!(back.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
    // Bad SQL is a clear error, not a crash.
    let o = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["sql", "--lake", l, "SELEC nonsense"])
        .output()
        .unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("query: SELEC nonsense"));
    // GeoParquet: the geo metadata and one polygon per covered cell.
    let gp = d.path().join("cells.parquet");
    ok(&[
        "export",
        "cells",
        "--lake",
        l,
        "--epoch",
        "2026-W47",
        "--output",
        gp.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&gp).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
    use parquet::file::reader::FileReader;
    let kv = reader.metadata().file_metadata().key_value_metadata().unwrap().clone();
    let geo: serde_json::Value =
        serde_json::from_str(kv.iter().find(|k| k.key == "geo").unwrap().value.as_ref().unwrap()).unwrap();
    assert_eq!(geo["version"], "1.1.0");
    assert_eq!(geo["columns"]["geometry"]["encoding"], "WKB");
    let cells: u64 = ok(&[
        "sql",
        "--lake",
        l,
        "--format",
        "csv",
        "SELECT count(*) AS n FROM coverage WHERE epoch = '2026-W47'",
    ])
    .lines()
    .nth(1)
    .unwrap()
    .parse()
    .unwrap();
    assert_eq!(reader.metadata().file_metadata().num_rows() as u64, cells);
}
