//! Regions, roads, bounties, emission and caps end to end, and every GIS export opened by GDAL's
//! own tools (`ogrinfo`, `ogr2ogr`, `gdalinfo`) — real GDAL, not our reader.

mod common;
use common::{demo_lake, fails, ok, sample};
use std::path::Path;
use std::process::Command;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn tool(name: &str, args: &[&str]) -> String {
    let o = Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{name}` ({e}): install GDAL's tools with scripts/setup-system.sh"));
    assert!(
        o.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn json(args: &[&str]) -> serde_json::Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    serde_json::from_str(&ok(&a)).unwrap()
}

/// A fleet simulated into `dir/fleet` and ingested into `dir/lake`.
fn fleet_lake(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let fleet = dir.join("fleet");
    let lake = dir.join("lake");
    ok(&["simulate", "--out", s(&fleet), "--drivers", "8", "--epochs", "2"]);
    ok(&[
        "ingest",
        "--lake",
        s(&lake),
        "--tree",
        s(&fleet),
        "--received-at",
        "2026-11-23T12:00:00Z",
    ]);
    (fleet, lake)
}

fn run(lake: &Path, fleet: &Path, epoch: &str, policy: &Path, extra: &[&str]) -> serde_json::Value {
    let reg = fleet.join("registry.csv");
    let mut a = vec![
        "epoch",
        "run",
        "--lake",
        s(lake),
        "--epoch",
        epoch,
        "--registry",
        s(&reg),
        "--policy",
        s(policy),
    ];
    a.extend_from_slice(extra);
    json(&a)
}

/// `epoch run` of 2026-W46 with a pool of 1,000,000 and `policy`.
fn w46_args(lake: &Path, fleet: &Path, policy: &Path) -> Vec<String> {
    let reg = fleet.join("registry.csv");
    [
        "epoch",
        "run",
        "--lake",
        s(lake),
        "--epoch",
        "2026-W46",
        "--registry",
        s(&reg),
        "--policy",
        s(policy),
        "--pool",
        "1000000",
    ]
    .map(str::to_owned)
    .to_vec()
}

#[test]
fn demo_epochs_pay_regions_roads_and_a_bounty_and_replay_byte_identical() {
    let d = tempfile::tempdir().unwrap();
    let lake = demo_lake(d.path());
    for e in ["2026-W46", "2026-W47"] {
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(lake.join("epochs").join(e).join("manifest.json")).unwrap()).unwrap();
        let places = &m["places"];
        assert!(
            places["road_km_network"].as_str().unwrap().parse::<f64>().unwrap() > 40.0,
            "{places}"
        );
        assert_eq!(m["bounties"][0]["id"], "north-east");
        assert_eq!(places["sources"].as_array().unwrap().len(), 3);
        let v = json(&["epoch", "verify", "--lake", s(&lake), "--epoch", e]);
        assert_eq!(v["ok"], true, "{v}");
    }
    // W46: the bounty was earned (the sample drives the north-east corner) and paid exactly.
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lake.join("epochs/2026-W46/manifest.json")).unwrap()).unwrap();
    let b = &m["bounties"][0];
    assert_eq!(b["allocated"], b["available"], "{b}");
    let sql = |q: &str| json(&["sql", "--lake", s(&lake), "--format", "json", q]);
    let rows = sql("SELECT kind, CAST(SUM(amount) AS VARCHAR) AS s FROM rewards WHERE epoch = '2026-W46' GROUP BY kind ORDER BY kind");
    assert_eq!(rows[0]["kind"], "base");
    assert_eq!(rows[0]["s"], m["pool"]);
    assert_eq!(rows[1]["kind"], "bounty:north-east");
    assert_eq!(rows[1]["s"], b["allocated"]);
    // Off the road network nothing earns; east cells carry ×1.5.
    let off = sql("SELECT COUNT(*) AS n, CAST(SUM(points) AS VARCHAR) AS p FROM explain WHERE on_road = false");
    assert!(
        off[0]["n"].as_i64().unwrap() > 0,
        "the sample has off-road fixes (the footpath, wander)"
    );
    assert_eq!(off[0]["p"], "0.000000");
    let east = sql("SELECT DISTINCT CAST(region_w AS VARCHAR) AS w FROM explain WHERE region = 'east'");
    assert_eq!(east[0]["w"], "1.500000");
    let reg = sql("SELECT region, cells, contributors FROM regions WHERE epoch = '2026-W46' ORDER BY region");
    assert_eq!(reg.as_array().unwrap().len(), 3, "{reg}"); // east, west, and outside (null)
}

#[test]
fn a_region_layer_written_by_ogr2ogr_drives_the_region_multiplier_exactly_like_its_geojson() {
    let d = tempfile::tempdir().unwrap();
    let (fleet, lake) = fleet_lake(d.path());
    // GeoJSON → GeoPackage and → Shapefile by GDAL itself; the policy names the GeoPackage.
    let gpkg = fleet.join("regions.gpkg");
    tool("ogr2ogr", &["-f", "GPKG", s(&gpkg), s(&fleet.join("regions.geojson"))]);
    let text = std::fs::read_to_string(fleet.join("places.toml")).unwrap();
    assert!(text.contains("\"regions.geojson\""));
    std::fs::write(
        fleet.join("gpkg.toml"),
        text.replace("\"regions.geojson\"", "\"regions.gpkg\""),
    )
    .unwrap();
    let a = json(&[
        "places",
        "--policy",
        s(&fleet.join("places.toml")),
        "--output",
        s(&d.path().join("a.parquet")),
    ]);
    let b = json(&[
        "places",
        "--policy",
        s(&fleet.join("gpkg.toml")),
        "--output",
        s(&d.path().join("b.parquet")),
    ]);
    assert_eq!(a["regions"], b["regions"]);
    assert_eq!(
        std::fs::read(d.path().join("a.parquet")).unwrap(),
        std::fs::read(d.path().join("b.parquet")).unwrap(),
        "the same polygons read by GDAL and natively give the same cells"
    );
    let out = run(
        &lake,
        &fleet,
        "2026-W46",
        &fleet.join("gpkg.toml"),
        &["--pool", "1000000"],
    );
    let east = out["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["region"] == "east")
        .unwrap()
        .clone();
    assert_eq!(east["weight"], "1.500000");
    assert!(east["cells"].as_u64().unwrap() > 0);
}

#[test]
fn emission_schedule_sets_the_pool_and_a_differing_pool_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let (fleet, lake) = fleet_lake(d.path());
    let p = d.path().join("emission.toml");
    std::fs::write(
        &p,
        "[emission]\nrule = \"halving\"\npool = \"1000000\"\nstart_epoch = \"2026-W45\"\nhalving_epochs = 1\n\
         [rewards]\nmax_wallet_share = 0.3\n",
    )
    .unwrap();
    let err = fails(&[
        "epoch",
        "run",
        "--lake",
        s(&lake),
        "--epoch",
        "2026-W46",
        "--registry",
        s(&fleet.join("registry.csv")),
        "--policy",
        s(&p),
        "--pool",
        "7",
    ]);
    assert!(err.contains("emission schedule") && err.contains("500000"), "{err}");
    let out = run(&lake, &fleet, "2026-W46", &p, &[]);
    assert_eq!(
        (out["pool"].as_str(), out["pool_rule"].as_str()),
        (Some("500000"), Some("halving"))
    );
    let cap = &out["cap"];
    assert_eq!(cap["amount"], "150000");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lake.join("epochs/2026-W46/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["pool_rule"], "halving");
    let sql = json(&[
        "sql",
        "--lake",
        s(&lake),
        "--format",
        "json",
        "SELECT CAST(MAX(total) AS VARCHAR) AS mx, CAST(SUM(amount) AS VARCHAR) AS s FROM rewards",
    ]);
    assert!(
        sql[0]["mx"].as_str().unwrap().parse::<u64>().unwrap() <= 150_000,
        "{sql}"
    );
    let unalloc: u64 = cap["unallocated"].as_str().unwrap().parse().unwrap();
    assert_eq!(sql[0]["s"].as_str().unwrap().parse::<u64>().unwrap() + unalloc, 500_000);
}

#[test]
fn every_export_format_opens_in_ogrinfo_with_the_same_features_and_valid_geometry() {
    let d = tempfile::tempdir().unwrap();
    let lake = demo_lake(d.path());
    for what in ["cells", "tracks", "regions"] {
        let mut counts = Vec::new();
        for ext in ["gpkg", "fgb", "geojson", "kml", "shp", "parquet"] {
            let out = d.path().join(format!("{what}.{ext}"));
            let r = json(&[
                "export",
                what,
                "--lake",
                s(&lake),
                "--epoch",
                "2026-W47",
                "--output",
                s(&out),
            ]);
            let n = r["features"].as_u64().unwrap();
            assert!(n > 0, "{what} {ext}");
            counts.push(n);
            if ext == "parquet" {
                continue; // Debian's GDAL 3.6 has no Parquet driver; pyarrow/geopandas check these
            }
            let info = tool("ogrinfo", &["-ro", "-al", "-so", s(&out)]);
            assert!(info.contains(&format!("Feature Count: {n}")), "{what}.{ext}: {info}");
            if ext != "kml" {
                let field = if what == "tracks" {
                    "device"
                } else if what == "cells" {
                    "cell_id"
                } else {
                    "region"
                };
                assert!(info.contains(&format!("{field}: String")), "{what}.{ext}: {info}");
            }
            let layer = info
                .lines()
                .find_map(|l| l.strip_prefix("Layer name: "))
                .unwrap()
                .trim()
                .to_string();
            // The geometry column's name depends on the driver (GeoPackage: `geom`).
            let gcol = info
                .lines()
                .find_map(|l| l.trim().strip_prefix("Geometry Column = "))
                .unwrap_or("GEOMETRY");
            let sql = format!("SELECT COUNT(*) AS bad FROM \"{layer}\" WHERE NOT ST_IsValid(\"{gcol}\")");
            let v = tool("ogrinfo", &["-ro", "-dialect", "sqlite", "-sql", &sql, s(&out)]);
            assert!(
                v.contains("bad (Integer) = 0"),
                "{what}.{ext} has invalid geometries: {v}"
            );
        }
        assert!(counts.windows(2).all(|w| w[0] == w[1]), "{what}: {counts:?}");
    }
    let err = fails(&[
        "export",
        "tracks",
        "--lake",
        s(&lake),
        "--epoch",
        "2026-W47",
        "--output",
        s(&d.path().join("t.xyz")),
    ]);
    assert!(err.contains("--format"), "{err}");
}

#[test]
fn coverage_raster_is_a_georeferenced_geotiff_and_a_cog() {
    let d = tempfile::tempdir().unwrap();
    let lake = demo_lake(d.path());
    for cog in [false, true] {
        let out = d.path().join(format!("cov-{cog}.tif"));
        let mut a = vec![
            "export",
            "coverage",
            "--lake",
            s(&lake),
            "--epoch",
            "2026-W47",
            "--output",
            s(&out),
            "--pixel-deg",
            "0.0002",
        ];
        if cog {
            a.push("--cog");
        }
        let r = json(&a);
        let info: serde_json::Value = serde_json::from_str(&tool("gdalinfo", &["-json", "-stats", s(&out)])).unwrap();
        assert_eq!(info["size"][0], r["width"]);
        assert_eq!(info["size"][1], r["height"]);
        assert!((info["geoTransform"][1].as_f64().unwrap() - 0.0002).abs() < 1e-12);
        let max = info["bands"][0]["maximum"].as_f64().unwrap();
        assert!(
            (1.0..=2.0).contains(&max),
            "pixels count epochs covered (2 epochs): {max}"
        );
        let layout = info["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"].as_str();
        assert_eq!(layout == Some("COG"), cog, "{info}");
    }
}

#[test]
fn helsinki_road_network_gives_road_cells_and_only_road_cells_earn() {
    let pbf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/osm/Helsinki.osm.pbf");
    if !pbf.is_file() {
        assert!(
            std::env::var_os("TESSERA_REQUIRE_CORPUS").is_none(),
            "corpus missing: {}",
            pbf.display()
        );
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("roads.toml");
    std::fs::write(
        &p,
        format!("[roads]\nsource = {:?}\nbuffer_cells = 0\n", pbf.display().to_string()),
    )
    .unwrap();
    let r = json(&["places", "--policy", s(&p)]);
    let cells = r["road_cells"].as_u64().unwrap();
    let km: f64 = r["road_km"].as_str().unwrap().parse().unwrap();
    // ~1 km × 1.7 km of central Helsinki: tens of km of drivable road, a few thousand res-12 cells.
    // (python/tests/test_gis.py rebuilds the same cells with pyosmium + h3-py and compares them.)
    assert!((20.0..400.0).contains(&km), "{r}");
    assert!((1_000..40_000).contains(&cells), "{r}");
    assert_eq!(r["road_centre_cells"], r["road_cells"]); // no buffer
    let _ = sample();
}

#[test]
fn a_region_left_without_cells_verifies_and_a_rerun_takes_the_places_from_the_cache() {
    let d = tempfile::tempdir().unwrap();
    let (fleet, lake) = fleet_lake(d.path());
    // A second [[regions]] entry over the same areas: the first entry wins every cell, so its
    // regions ("<name>-shadow") have none — but they are regions of the epoch all the same.
    let mut shadow: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fleet.join("regions.geojson")).unwrap()).unwrap();
    for f in shadow["features"].as_array_mut().unwrap() {
        let n = f["properties"]["name"].as_str().unwrap().to_string();
        f["properties"]["name"] = format!("{n}-shadow").into();
    }
    std::fs::write(fleet.join("shadow.geojson"), shadow.to_string()).unwrap();
    let policy = fleet.join("shadow.toml");
    std::fs::write(
        &policy,
        "[[regions]]\nsource = \"regions.geojson\"\nname_field = \"name\"\nweight_field = \"weight\"\n\n\
         [[regions]]\nsource = \"shadow.geojson\"\nname_field = \"name\"\nweight = 7\n",
    )
    .unwrap();
    let args = w46_args(&lake, &fleet, &policy);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let first = common::run_in(None, &args);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(String::from_utf8_lossy(&first.stderr).contains("places: built and cached"));
    let sql = |q: &str| json(&["sql", "--lake", s(&lake), "--format", "json", q]);
    let rows = sql("SELECT region, cells FROM regions WHERE region LIKE '%-shadow' ORDER BY region");
    assert!(!rows.as_array().unwrap().is_empty(), "{rows}");
    assert!(rows.as_array().unwrap().iter().all(|r| r["cells"] == 0), "{rows}");
    // `epoch verify` recomputes from places.parquet, which has no row for a region without cells.
    let v = json(&["epoch", "verify", "--lake", s(&lake), "--epoch", "2026-W46"]);
    assert_eq!(v["ok"], true, "{v}");
    // The same run again: places from the cache, the same bytes (nothing written).
    let cache = lake.join("cache/places");
    // One entry: the places.parquet bytes, the same places' cell file and the JSON naming their
    // key and hashes.
    let parquet_files = || {
        let mut v: Vec<std::path::PathBuf> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
            .collect();
        v.sort();
        v
    };
    // Besides the entries, the executable's hash remembered under its file identity.
    let ids = cache.join(tessera::places::cache::EXECUTABLE_IDS);
    assert_eq!(std::fs::read_to_string(&ids).unwrap().lines().count(), 1);
    let entries = || {
        std::fs::read_dir(&cache)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path() != ids)
            .count()
    };
    assert_eq!(entries(), 3);
    let cached = parquet_files();
    assert_eq!(cached.len(), 1);
    // The cache file is the published places.parquet, byte for byte.
    assert_eq!(
        std::fs::read(&cached[0]).unwrap(),
        std::fs::read(lake.join("epochs/2026-W46/places.parquet")).unwrap()
    );
    let again = common::run_in(None, &args);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(String::from_utf8_lossy(&again.stderr).contains("places: from the cache"));
    assert!(String::from_utf8_lossy(&again.stdout).contains("already published with exactly these bytes"));
    // A damaged cache file is rebuilt, never trusted: still the same bytes.
    std::fs::write(&cached[0], b"PAR1 not a parquet file").unwrap();
    let third = common::run_in(None, &args);
    assert!(third.status.success(), "{}", String::from_utf8_lossy(&third.stderr));
    assert!(String::from_utf8_lossy(&third.stderr).contains("replacing an unreadable cache file"));
    assert!(String::from_utf8_lossy(&third.stdout).contains("already published with exactly these bytes"));
    // A changed source file misses the cache (a second entry), and the epoch differs.
    shadow["features"][0]["properties"]["name"] = "renamed-shadow".into();
    std::fs::write(fleet.join("shadow.geojson"), shadow.to_string()).unwrap();
    let mut replace = args.to_vec();
    replace.push("--replace");
    let fourth = common::run_in(None, &replace);
    assert!(fourth.status.success(), "{}", String::from_utf8_lossy(&fourth.stderr));
    assert!(String::from_utf8_lossy(&fourth.stderr).contains("places: built and cached"));
    assert_eq!(parquet_files().len(), 2);
    assert_eq!(entries(), 6);
    let rows = sql("SELECT region FROM regions WHERE region = 'renamed-shadow'");
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
}

/// `tessera ARGS` with `TESSERA_GDAL` set to `helper`.
fn run_with_helper(helper: &Path, args: &[&str]) -> std::process::Output {
    Command::new(common::bin())
        .args(args)
        .env("TESSERA_GDAL", helper)
        .output()
        .unwrap()
}

/// The shared libraries `ldd` lists for `exe`.
fn libraries(exe: &str) -> String {
    tool("ldd", &[exe])
}

#[test]
fn only_the_gdal_helper_loads_gdal_not_tessera() {
    // Every command of `tessera` used to load GDAL's ~110 libraries at start (36 ms of CPU).
    let helper = env!("CARGO_BIN_EXE_tessera-gdal");
    assert!(libraries(helper).contains("libgdal"), "{}", libraries(helper));
    assert!(
        !libraries(common::bin()).contains("libgdal"),
        "{}",
        libraries(common::bin())
    );
    // The helper is not a command: run by hand it says what it is and exits 2.
    let o = Command::new(helper).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let text = String::from_utf8_lossy(&o.stderr);
    assert!(text.contains("GDAL helper") && text.contains("GDAL 3."), "{text}");
}

#[test]
fn a_missing_or_foreign_gdal_helper_is_a_clear_error_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let lake = demo_lake(d.path());
    let export = |out: &Path| {
        vec![
            "export".to_string(),
            "cells".into(),
            "--lake".into(),
            s(&lake).into(),
            "--epoch".into(),
            "2026-W47".into(),
            "--output".into(),
            s(out).into(),
        ]
    };
    let gpkg = d.path().join("cells.gpkg");
    let args = export(&gpkg);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let missing = d.path().join("no-such-helper");
    let o = run_with_helper(&missing, &args);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("starting the GDAL helper") && err.contains("no-such-helper"),
        "{err}"
    );
    // A program that is not the helper (exits at once, says nothing).
    let o = run_with_helper(Path::new("/bin/true"), &args);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/bin/true ended without greeting"), "{err}");
    // One that talks, but not this protocol (`echo --serve-v1` says its argument): refused by
    // the greeting's length ("--serve-" as a length), not read into memory.
    let o = run_with_helper(Path::new("/bin/echo"), &args);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad greeting (named by TESSERA_GDAL): not a tessera-gdal helper"),
        "{err}"
    );
    // The real helper, gone before it reads the request: an error, not a silent SIGPIPE (141).
    let gone = d.path().join("gone.sh");
    let made = Command::new("sh")
        .args([
            "-c",
            "printf '#!/bin/sh\\nexec \"%s\" \"$@\" </dev/null\\n' \"$0\" > \"$1\" && chmod +x \"$1\"",
        ])
        .arg(env!("CARGO_BIN_EXE_tessera-gdal"))
        .arg(&gone)
        .status()
        .unwrap();
    assert!(made.success());
    let o = run_with_helper(&gone, &args);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("gone.sh ended"), "{err}");
    assert!(!gpkg.exists());
    // What does not need GDAL does not need the helper.
    let parquet = d.path().join("cells.parquet");
    let args = export(&parquet);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run_with_helper(&missing, &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(parquet.exists());
}

#[test]
fn the_gdal_helpers_own_build_is_part_of_the_places_cache_key() {
    // `tessera`'s hash does not cover the code that reads places through GDAL: the helper's
    // BLAKE3 is in the key, so another helper build never reuses cells the first one read.
    let d = tempfile::tempdir().unwrap();
    let (fleet, lake) = fleet_lake(d.path());
    tool(
        "ogr2ogr",
        &[
            "-f",
            "GPKG",
            s(&fleet.join("regions.gpkg")),
            s(&fleet.join("regions.geojson")),
        ],
    );
    let text = std::fs::read_to_string(fleet.join("places.toml")).unwrap();
    let policy = fleet.join("gpkg.toml");
    std::fs::write(&policy, text.replace("\"regions.geojson\"", "\"regions.gpkg\"")).unwrap();
    let args = w46_args(&lake, &fleet, &policy);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let helper = Path::new(env!("CARGO_BIN_EXE_tessera-gdal"));
    let stderr = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    assert!(stderr(run_with_helper(helper, &args)).contains("places: built and cached"));
    assert!(stderr(run_with_helper(helper, &args)).contains("places: from the cache"));
    // The same helper with one more byte: another build.
    // (Copied by `sh`, so no thread of this test process holds the file open for writing when
    // it is executed: ETXTBSY.)
    let other = d.path().join("tessera-gdal");
    let copied = Command::new("sh")
        .args(["-c", "cp \"$0\" \"$1\" && printf x >> \"$1\""])
        .arg(helper)
        .arg(&other)
        .status()
        .unwrap();
    assert!(copied.success());
    assert!(stderr(run_with_helper(&other, &args)).contains("places: built and cached"));
    assert!(stderr(run_with_helper(&other, &args)).contains("places: from the cache"));
}

#[test]
fn an_export_into_a_missing_directory_creates_it_and_a_gdal_failure_is_said_once() {
    let d = tempfile::tempdir().unwrap();
    let lake = demo_lake(d.path());
    let export = |what: &str, out: &Path| export_w47(&lake, what, out);
    // Every format creates the directories it is written into, as GeoParquet always did.
    for ext in ["gpkg", "fgb", "geojson", "kml", "shp", "parquet"] {
        let out = d.path().join(format!("new-{ext}/sub/cells.{ext}"));
        export("cells", &out);
        // Only the output (and a Shapefile's sidecars) is left there: no temporaries.
        let names: Vec<String> = std::fs::read_dir(out.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| n.starts_with("cells.")), "{ext}: {names:?}");
    }
    let tif = d.path().join("new-tif/sub/coverage.tif");
    export("coverage", &tif);
    // A places source GDAL cannot read: its message once, in tessera's error, not also as
    // GDAL's own `ERROR 4:` line.
    let garbage = d.path().join("regions.gpkg");
    std::fs::write(&garbage, b"not a GeoPackage").unwrap();
    let policy = d.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[[regions]]\nsource = \"regions.gpkg\"\nname_field = \"name\"\n",
    )
    .unwrap();
    let err = fails(&["places", "--policy", s(&policy)]);
    assert!(err.contains("regions.gpkg: open as a vector source"), "{err}");
    // Named once by tessera, once inside GDAL's message.
    assert_eq!(err.matches("regions.gpkg").count(), 2, "{err}");
    assert!(err.contains("not recognized"), "{err}");
    assert!(!err.lines().any(|l| l.starts_with("ERROR ")), "{err}");
    assert_eq!(err.matches("not recognized").count(), 1, "{err}");
}

/// `tessera export WHAT` of the demo lake's 2026-W47 into `out`, which must then exist.
fn export_w47(lake: &Path, what: &str, out: &Path) {
    ok(&[
        "export",
        what,
        "--lake",
        s(lake),
        "--epoch",
        "2026-W47",
        "--output",
        s(out),
    ]);
    assert!(out.is_file(), "{}", out.display());
}

/// The live and zombie children of this process named `name` (every thread's `children`).
fn children_named(name: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let list = std::fs::read_to_string(task.unwrap().path().join("children")).unwrap_or_default();
        for pid in list.split_whitespace().filter_map(|p| p.parse::<u32>().ok()) {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == name {
                out.push(pid);
            }
        }
    }
    out
}

#[test]
fn tessera_waits_for_its_gdal_helper_before_it_exits() {
    // This test process becomes a subreaper: a helper that outlived its `tessera` is
    // reparented here and stays as a zombie until waited for, so it can be seen.
    // SAFETY: prctl with integer arguments only.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }, 0);
    let d = tempfile::tempdir().unwrap();
    let lake = demo_lake(d.path());
    export_w47(&lake, "cells", &d.path().join("cells.gpkg"));
    // A helper left behind exits at the end of its input, milliseconds after tessera.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(children_named("tessera-gdal"), Vec::<u32>::new());
}
