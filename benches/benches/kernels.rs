//! Criterion micro-benchmarks of the kernels on a simulated fleet:
//! parse (NMEA bytes → fixes), cover (a cleaned trace → visits), index (fixes → H3 cells, against
//! h3o's indexer, and at two resolutions), score (sorted visits → points), trust (the per-segment
//! detectors; `check_segment` also computes each fix's point, which the pipeline takes from
//! cleaning), allocate (points → integer amounts). `cargo bench -p tessera-benches --bench kernels`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use tessera::cells::{cover_segment, VisitMap};
use tessera::novelty::VisitRow;
use tessera::policy::Policy;
use tessera::simulate::{simulate, ScaleConfig, SimConfig};

fn kernels(c: &mut Criterion) {
    let k = Policy::default().kernels().unwrap();

    // parse: one 30-minute 1 Hz NMEA trace (GGA + RMC + GSA per second).
    let fleet = simulate(&SimConfig {
        drivers: 6,
        epochs: 1,
        trips: 1,
        minutes: 30,
        ..SimConfig::default()
    });
    let nmea = fleet
        .files
        .iter()
        .find(|f| f.name.ends_with(".nmea"))
        .unwrap()
        .bytes
        .clone();
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(nmea.len() as u64));
    g.bench_function("nmea_30min_trace", |b| {
        b.iter(|| black_box(tessera::ingest::parse(&nmea)).fixes.len())
    });
    g.finish();

    // cover: one driver-week (50 400 fixes), one segment, res 12 with grid paths.
    let sc = ScaleConfig::for_fixes(50_400, 7);
    let fixes = sc.driver_fixes(0);
    let refs: Vec<&tessera::fix::Fix> = fixes.iter().collect();
    let mut g = c.benchmark_group("cover");
    g.throughput(Throughput::Elements(fixes.len() as u64));
    g.bench_function("driver_week_res12", |b| {
        b.iter(|| {
            let mut m = VisitMap::default();
            cover_segment(&refs, 0, k.resolution, &mut m);
            m.len()
        })
    });
    g.bench_function("dedupe_points_res12", |b| {
        let t: Vec<i64> = fixes.iter().map(|f| f.time_ms).collect();
        let la: Vec<f64> = fixes.iter().map(|f| f.lat).collect();
        let lo: Vec<f64> = fixes.iter().map(|f| f.lon).collect();
        b.iter(|| tessera::cells::dedupe_points(&t, &la, &lo, k.resolution).len())
    });
    g.finish();

    // index: the same driver-week's fixes to res-12 cells, tessera's point indexer against h3o's
    // own indexer for sequences (the peer), in one run.
    let lls: Vec<h3o::LatLng> = fixes.iter().map(|f| h3o::LatLng::new(f.lat, f.lon).unwrap()).collect();
    let mut g = c.benchmark_group("index");
    g.throughput(Throughput::Elements(lls.len() as u64));
    g.bench_function("point_indexer_res12", |b| {
        b.iter(|| {
            let mut ix = tessera::cells::PointIndexer::default();
            lls.iter()
                .fold(0u64, |a, ll| a ^ u64::from(ix.to_cell(*ll, k.resolution)))
        })
    });
    // The pipeline's indexing with trust on: each fix at res 12 and at the copies' anchor
    // resolution (10) from one projection.
    g.bench_function("point_indexer_res12_and_10", |b| {
        b.iter(|| {
            let mut ix = tessera::cells::PointIndexer::default();
            lls.iter().fold(0u64, |a, ll| {
                let [(c, _), (p, _)] = ix.to_cells_hex(*ll, [k.resolution, h3o::Resolution::Ten]);
                a ^ u64::from(c) ^ u64::from(p)
            })
        })
    });
    g.bench_function("h3o_latlng_indexer_res12", |b| {
        b.iter(|| {
            let mut ix = h3o::LatLngIndexer::default();
            lls.iter()
                .fold(0u64, |a, ll| a ^ u64::from(ix.to_cell(*ll, k.resolution)))
        })
    });
    g.finish();

    // score: visits of 200 drivers, sorted by (cell, device), no prior state.
    let sc = ScaleConfig::for_fixes(200 * 3_600, 7);
    let mut map = VisitMap::default();
    for d in 0..sc.drivers {
        let f = sc.driver_fixes(d);
        let r: Vec<&tessera::fix::Fix> = f.iter().collect();
        cover_segment(&r, d, k.resolution, &mut map);
    }
    let mut rows: Vec<VisitRow> = map
        .into_iter()
        .map(|((cell, device), visit)| VisitRow { cell, device, visit })
        .collect();
    rows.sort_by_key(|r| (r.cell, r.device));
    let devices: Vec<String> = (0..sc.drivers).map(|d| sc.device(d)).collect();
    let mut g = c.benchmark_group("score");
    g.throughput(Throughput::Elements(rows.len() as u64));
    g.bench_function("visits", |b| {
        b.iter(|| {
            tessera::novelty::score(
                &rows,
                &devices,
                &|_| None,
                0,
                &k,
                &tessera::places::Places::default(),
                None,
            )
            .len()
        })
    });
    g.finish();

    // trust: the per-segment detectors (time, despiker, movement floor, kinematics, simulator)
    // over the same driver-week as one segment, default trust policy.
    let tk = k.trust.as_ref().expect("the default policy has trust on");
    let mut g = c.benchmark_group("trust");
    g.throughput(Throughput::Elements(refs.len() as u64));
    g.bench_function("check_segment_driver_week", |b| {
        b.iter(|| tessera::trust::check_segment(&refs, None, tk).runs.len())
    });
    g.finish();

    // allocate: 100 000 recipients, largest remainder in u128 with 256-bit intermediates.
    let pts: Vec<(String, u128)> = (0..100_000u64)
        .map(|i| {
            (
                format!("0x{:040x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                1 + (i as u128 * 7919) % 1_000_000_000,
            )
        })
        .collect();
    let mut g = c.benchmark_group("allocate");
    g.throughput(Throughput::Elements(pts.len() as u64));
    g.bench_function("recipients_100k", |b| {
        b.iter_batched(
            || pts.clone(),
            |p| {
                tessera::rewards::allocate(1_000_000_000_000_000_000_000, &p)
                    .unwrap()
                    .len()
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(3));
    targets = kernels
}
criterion_main!(benches);
