//! `tessera render` on the demo lake: the PNG decodes, every cell sits under its class colour
//! (ages and points computed here from the epoch's own Parquet files), reruns are byte-identical,
//! bad arguments are clear errors.

use arrow_array::{Array, Decimal128Array, StringArray, UInt64Array};
use h3o::{CellIndex, LatLng};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use tessera::render::{ColorBy, Options, FRESHNESS_CLASSES, NO_POINTS, POINTS_RAMP};
use tiny_skia::Pixmap;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera")).args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "tessera {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn batches(p: &Path) -> Vec<arrow_array::RecordBatch> {
    tessera::tables::from_parquet(std::fs::read(p).unwrap().into()).unwrap()
}

fn column<'a, T: 'static>(b: &'a arrow_array::RecordBatch, name: &str) -> &'a T {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| panic!("column {name} type"))
}

fn rgb(pm: &Pixmap, (x, y): (f64, f64)) -> [u8; 3] {
    let p = pm.pixel(x as u32, y as u32).unwrap();
    [p.red(), p.green(), p.blue()]
}

#[test]
fn render_draws_every_cell_in_its_class_colour_with_legend_and_scale() {
    let d = tempfile::tempdir().unwrap();
    let lake = d.path().join("lake");
    let l = lake.to_str().unwrap();
    ok(&["demo", "--lake", l]);
    let e: tessera::epoch::Epoch = "2026-W47".parse().unwrap();
    let epoch_dir = lake.join("epochs/2026-W47");

    // Ages from coverage.parquet, points from explain.parquet, read here directly.
    let mut age: BTreeMap<u64, i64> = BTreeMap::new();
    for b in batches(&epoch_dir.join("coverage.parquet")) {
        let cell = column::<UInt64Array>(&b, "cell");
        let last = column::<StringArray>(&b, "last_epoch");
        for i in 0..b.num_rows() {
            let le: tessera::epoch::Epoch = last.value(i).parse().unwrap();
            age.insert(cell.value(i), e.index() - le.index());
        }
    }
    let mut points: BTreeMap<u64, i128> = BTreeMap::new();
    for b in batches(&epoch_dir.join("explain.parquet")) {
        let cell = column::<UInt64Array>(&b, "cell");
        let p = column::<Decimal128Array>(&b, "points");
        for i in 0..b.num_rows() {
            *points.entry(cell.value(i)).or_default() += p.value(i);
        }
    }
    assert!(
        age.values().any(|a| *a == 0) && age.values().any(|a| *a > 0),
        "demo has fresh and older cells"
    );

    // Freshness at the data's resolution, wide enough that a cell's centre pixel is inside it.
    let png = d.path().join("fresh.png");
    let out = ok(&[
        "render",
        "--lake",
        l,
        "--epoch",
        "2026-W47",
        "--output",
        png.to_str().unwrap(),
        "--res",
        "12",
        "--width",
        "2400",
    ]);
    assert!(out.contains(&format!("{} cells of 2026-W47", age.len())), "{out}");
    assert!(out.contains("mapped this epoch"), "{out}");
    let bytes = std::fs::read(&png).unwrap();
    let pm = Pixmap::decode_png(&bytes).unwrap();
    assert_eq!(pm.width(), 2400);
    // The library call with the same options gives the same bytes and tells where cells are.
    let cells = tessera::geoparquet::epoch_cells(&tessera::lake::Lake::open(&lake).unwrap(), &e).unwrap();
    let opts = Options {
        width: 2400,
        resolution: Some(h3o::Resolution::Twelve),
        ..Options::default()
    };
    let map = tessera::render::render(&e, &cells, &opts).unwrap();
    assert_eq!(map.png, bytes, "CLI and library draw the same bytes");
    assert!(map.view.metres_per_pixel > 0.5 && map.view.metres_per_pixel < 3.0);
    for (cell, a) in &age {
        let c = CellIndex::try_from(*cell).unwrap();
        let class = FRESHNESS_CLASSES
            .iter()
            .find(|k| *a >= k.0 as i64 && *a <= k.1 as i64)
            .unwrap();
        assert_eq!(rgb(&pm, map.view.pixel(LatLng::from(c))), class.3, "cell {c} age {a}");
    }
    // The legend swatches are drawn (pixels of every used class colour outside the map area).
    let (mx, _, mw, _) = map.view.map_area;
    for entry in &map.legend {
        let swatch = (0..pm.height())
            .flat_map(|y| ((mx + mw + 1)..pm.width()).map(move |x| (x as f64, y as f64)))
            .any(|p| rgb(&pm, p) == entry.color);
        assert!(swatch, "legend swatch for {:?}", entry.label);
    }
    // Same command, same bytes; the write left no temp file.
    ok(&[
        "render",
        "--lake",
        l,
        "--epoch",
        "2026-W47",
        "--output",
        png.to_str().unwrap(),
        "--res",
        "12",
        "--width",
        "2400",
    ]);
    assert_eq!(std::fs::read(&png).unwrap(), bytes);
    let names: Vec<String> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|x| x.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| n == "lake" || n == "fresh.png"), "{names:?}");

    // Points: unpaid cells grey; among paid cells, more points never get a lighter class.
    let png2 = d.path().join("points.png");
    ok(&[
        "render",
        "--lake",
        l,
        "--epoch",
        "2026-W47",
        "--output",
        png2.to_str().unwrap(),
        "--color",
        "points",
        "--res",
        "12",
        "--width",
        "2400",
    ]);
    let pm2 = Pixmap::decode_png(&std::fs::read(&png2).unwrap()).unwrap();
    let map2 = tessera::render::render(
        &e,
        &cells,
        &Options {
            color_by: ColorBy::Points,
            ..opts.clone()
        },
    )
    .unwrap();
    assert_eq!(map2.png, std::fs::read(&png2).unwrap());
    let mut seen: Vec<(i128, usize)> = Vec::new();
    for cell in age.keys() {
        let c = CellIndex::try_from(*cell).unwrap();
        let got = rgb(&pm2, map2.view.pixel(LatLng::from(c)));
        let p = points.get(cell).copied().unwrap_or(0);
        if p == 0 {
            assert_eq!(got, NO_POINTS, "cell {c} earned nothing");
        } else {
            let k = POINTS_RAMP
                .iter()
                .position(|x| *x == got)
                .unwrap_or_else(|| panic!("cell {c}: {got:?}"));
            seen.push((p, k));
        }
    }
    seen.sort();
    assert!(seen.windows(2).all(|w| w[0].1 <= w[1].1), "classes follow points");
    assert_eq!(seen.first().unwrap().1, 0);
    assert_eq!(seen.last().unwrap().1, POINTS_RAMP.len() - 1);

    // Default options merge tiny cells into parents and still say what they drew.
    let out = ok(&[
        "render",
        "--lake",
        l,
        "--epoch",
        "2026-W47",
        "--output",
        png.to_str().unwrap(),
    ]);
    assert!(out.contains("at H3 res 1"), "{out}");
    assert!(out.contains("scale bar "), "{out}");

    // Clear errors.
    for (args, want) in [
        (vec!["--epoch", "2026-W40"], "epoch 2026-W40 has not been run"),
        (
            vec!["--epoch", "2026-W47", "--color", "speed"],
            "invalid value 'speed' for '--color <COLOR>'",
        ),
        (
            vec!["--epoch", "2026-W47", "--res", "14"],
            "finer than the lake's cells (resolution 12)",
        ),
        (vec!["--epoch", "2026-W47", "--res", "16"], "an H3 resolution 0..=15"),
        (
            vec!["--epoch", "2026-W47", "--width", "100"],
            "width 100 is outside 800..=8000",
        ),
    ] {
        let mut a = vec!["render", "--lake", l, "--output", "/nonexistent/never.png"];
        a.extend(args);
        let o = run(&a);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{a:?}: {err}");
    }
}
