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

/// A lake (in a temporary directory, returned with it) holding the attack fleet of 2026-W47.
fn attack_lake() -> (tempfile::TempDir, Lake, tessera::simulate::attacks::AttackFleet) {
    let fleet = tessera::simulate::attacks::attack_fleet(7, "2026-W47".parse().unwrap());
    let d = tempfile::tempdir().unwrap();
    let lake = Lake::open(d.path()).unwrap();
    fleet.ingest(&lake);
    (d, lake, fleet)
}

/// A lake (in a temporary directory, returned with it) holding every file of `fleet`, all
/// received at `received` (UTC ms).
fn fleet_lake(fleet: &tessera::simulate::Fleet, received: i64) -> (tempfile::TempDir, Lake) {
    let d = tempfile::tempdir().unwrap();
    let lake = Lake::open(d.path()).unwrap();
    let uploads: Vec<Upload> = fleet
        .files
        .iter()
        .map(|f| Upload::new(&f.device, &f.name, &f.bytes).received_at(received))
        .collect();
    lake.ingest_batch(&uploads);
    (d, lake)
}

#[test]
fn rule_the_sample_fleets_dishonest_drivers_are_withheld_and_honest_ones_are_not() {
    let cfg = SimConfig::default();
    let fleet = simulate(&cfg);
    let (_d, lake) = fleet_lake(&fleet, cfg.start.next().next().start_ms());
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

/// The dates of a GPX track's `<time>` elements in November 2026 moved 7 days later.
fn a_week_later(gpx: &str) -> String {
    let tag = "<time>2026-11-";
    let (mut out, mut rest) = (String::new(), gpx);
    while let Some(i) = rest.find(tag) {
        let j = i + tag.len();
        let day: u32 = rest[j..j + 2].parse().unwrap();
        out.push_str(&rest[..j]);
        out.push_str(&format!("{:02}", day + 7));
        rest = &rest[j + 2..];
    }
    out.push_str(rest);
    out
}

#[test]
fn rule_a_trace_replayed_a_week_later_is_found_through_the_earlier_epochs_fingerprints() {
    use tessera::pipeline::run;
    let cfg = SimConfig::default();
    let fleet = simulate(&cfg);
    let (w46, w47) = (cfg.start, cfg.start.next());
    let received = w47.next().start_ms();
    let (_d, lake) = fleet_lake(&fleet, received);
    let reg_csv = format!("{}car-replay,0x{}\n", fleet.registry_csv, "ab".repeat(20));
    let reg = Registry::parse(reg_csv.as_bytes(), "sim").unwrap();
    run(&lake, &EpochInputs::new(w46, 1_000_000, reg.clone()), &no_progress).unwrap();
    // Last week's GPX trip of car-006, uploaded again by another device with its dates moved
    // into this week: only the earlier epoch's fingerprints.parquet can tell.
    let original = fleet
        .files
        .iter()
        .find(|f| f.device == "car-006" && f.name == "2026-W46-trip1.gpx")
        .unwrap();
    let replay = a_week_later(std::str::from_utf8(&original.bytes).unwrap());
    assert_ne!(replay.as_bytes(), &original.bytes[..]);
    lake.ingest_batch(&[Upload::new("car-replay", "2026-W47-trip1.gpx", replay.as_bytes()).received_at(received)]);
    let out = compute(&lake, &EpochInputs::new(w47, 1_000_000, reg), &no_progress).unwrap();
    let rows = flags(&out.files);
    let found: Vec<&tables::FlagRow> = rows
        .iter()
        .filter(|r| r.device == "car-replay" && r.detector == "replay")
        .collect();
    assert!(!found.is_empty(), "{rows:#?}");
    for r in &found {
        assert!(
            r.detail.contains("car-006") && r.detail.contains("an earlier epoch"),
            "{}",
            r.detail
        );
    }
    // car-006's own trip this week is not a copy of anything.
    assert!(!rows.iter().any(|r| r.device == "car-006" && r.detector == "replay"));
}

/// The off-road detector as the epoch runs it (road cells as a grandparent-mask set, fix cells
/// from the point indexer, steps from cleaning) against the same rule computed here from the
/// lake with a plain binary search of the road table and h3o's own indexing: the same sources
/// withheld, with the same measured share, track length, fixes, metres and time range.
#[test]
fn rule_off_road_in_the_epoch_equals_a_search_of_the_road_table() {
    use tessera::places::{build, shapes::Native};
    use tessera::policy::Policy;
    use tessera::quality::Verdict;
    let cfg = SimConfig::default();
    let fleet = simulate(&cfg);
    let (d, lake) = fleet_lake(&fleet, cfg.start.next().next().start_ms());
    let places_dir = d.path().join("places");
    std::fs::create_dir_all(&places_dir).unwrap();
    for (name, bytes) in tessera::simulate::places::grid_places(&cfg) {
        std::fs::write(places_dir.join(name), bytes).unwrap();
    }
    // No buffer around the streets and a low threshold: receiver noise takes part of every
    // track off the network, so the rule withholds some sources and spares others.
    let text =
        "[roads]\nsource = \"roads.geojson\"\nbuffer_cells = 0\nmax_off_road_share = 0.12\nmin_off_road_km = 0.5\n";
    let policy = Policy::from_toml_str(text).unwrap();
    let places = build(&policy, &places_dir, &Native).unwrap();
    let reg = Registry::parse(fleet.registry_csv.as_bytes(), "sim").unwrap();
    let epoch = cfg.start.next();
    let mut inputs = EpochInputs::new(epoch, 1_000_000, reg.clone());
    inputs.policy_text = text.into();
    inputs.places = places.clone();
    let out = compute(&lake, &inputs, &no_progress).unwrap();
    let rows = flags(&out.files);
    let imu: BTreeSet<&str> = rows
        .iter()
        .filter(|r| r.detector.starts_with("imu"))
        .map(|r| r.source.as_str())
        .collect();
    let got: BTreeMap<&str, (i64, i64, &str, u64, u64)> = rows
        .iter()
        .filter(|r| r.detector == "off_road")
        .map(|r| {
            (
                r.source.as_str(),
                (r.start_ms, r.end_ms, r.measured.as_str(), r.fixes, r.meters),
            )
        })
        .collect();

    let k = policy.kernels().unwrap();
    let (rk, res) = (k.off_road.unwrap(), k.resolution);
    let mut want: BTreeMap<String, (i64, i64, String, u64, u64)> = BTreeMap::new();
    let mut judged = 0;
    for m in lake.sources().unwrap() {
        if reg.wallet(&m.device).is_none() || imu.contains(m.hash.as_str()) {
            continue;
        }
        let (all, _) = lake.read_fixes(&m.hash).unwrap();
        let fixes: Vec<_> = all
            .into_iter()
            .filter(|f| f.time_ms >= epoch.start_ms() && f.time_ms < epoch.end_ms())
            .collect();
        if fixes.is_empty() {
            continue;
        }
        judged += 1;
        let mut segments: Vec<Vec<(&tessera::fix::Fix, bool)>> = Vec::new();
        let mut last = None;
        for (f, v) in fixes.iter().zip(tessera::quality::clean(&fixes, &k)) {
            if let Verdict::Accepted(s) = v {
                if last != Some(s) {
                    segments.push(Vec::new());
                    last = Some(s);
                }
                let cell = h3o::LatLng::new(f.lat, f.lon).unwrap().to_cell(res);
                let on_road = places.on_road(u64::from(cell)).unwrap();
                segments.last_mut().unwrap().push((f, on_road));
            }
        }
        if let Some(f) = tessera::trust::roads::off_road(&segments, &rk) {
            want.insert(m.hash.clone(), (f.start_ms, f.end_ms, f.measured, f.fixes, f.meters));
        }
    }
    eprintln!("{} of {judged} sources off the road network", want.len());
    assert!(!want.is_empty() && want.len() < judged, "{} of {judged}", want.len());
    let got: BTreeMap<String, (i64, i64, String, u64, u64)> = got
        .into_iter()
        .map(|(s, (a, b, m, f, mm))| (s.to_string(), (a, b, m.to_string(), f, mm)))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn rule_one_file_cannot_pay_two_drives_at_once_through_a_clock_step() {
    // Two honest trips of the fleet, the second moved 5.5 km north and 60 s after the first's
    // start, joined in ONE file by a fix at the first trip's end stamped just before the second
    // trip starts: a backward clock step where the position goes on (so the trace restarts),
    // then a jump (a rejected teleport, a new segment). Before `clock_overlap`, this file was
    // paid for both drives at once; the same drives in two files of one device are `two_places`.
    let cfg = SimConfig::default();
    let fleet = simulate(&cfg);
    let w47 = cfg.start.next();
    let trip = |device: &str| {
        let f = fleet
            .files
            .iter()
            .find(|f| f.device == device && f.name.starts_with("2026-W47-trip1"))
            .unwrap();
        tessera::ingest::parse(&f.bytes).fixes
    };
    let a = trip("car-001");
    let mut b = trip("car-003");
    let shift = a[0].time_ms + 60_000 - b[0].time_ms;
    for f in &mut b {
        f.time_ms += shift;
        f.lat += 0.05;
    }
    assert!(b[0].time_ms < a[a.len() - 1].time_ms, "the drives overlap in time");
    let mut glue = a[a.len() - 1].clone();
    glue.time_ms = b[0].time_ms - 1000;
    let one: Vec<_> = a.iter().cloned().chain([glue]).chain(b.iter().cloned()).collect();
    let parquet = |fixes: &[tessera::fix::Fix]| {
        tables::to_parquet(&tables::fixes_schema(), &tables::fixes_to_batches("x", fixes)).unwrap()
    };
    let received = w47.next().start_ms();
    let (_d, lake) = fleet_lake(&fleet, received);
    lake.ingest_batch(&[
        Upload::new("car-oneday", "day.parquet", &parquet(&one)).received_at(received),
        Upload::new("car-twofiles", "a.parquet", &parquet(&a)).received_at(received),
        Upload::new("car-twofiles", "b.parquet", &parquet(&b)).received_at(received),
    ]);
    let reg_csv = format!(
        "{}car-oneday,0x{}\ncar-twofiles,0x{}\n",
        fleet.registry_csv,
        "a1".repeat(20),
        "a2".repeat(20)
    );
    let reg = Registry::parse(reg_csv.as_bytes(), "sim").unwrap();
    let out = compute(&lake, &EpochInputs::new(w47, 1_000_000, reg), &no_progress).unwrap();
    let rows = flags(&out.files);
    let overlap = rows
        .iter()
        .find(|r| r.device == "car-oneday" && r.detector == "clock_overlap")
        .unwrap_or_else(|| panic!("{rows:#?}"));
    assert_eq!(overlap.effect, "withhold_window");
    assert_eq!(overlap.policy_key, "trust.timeline.max_apart_m");
    assert!(rows
        .iter()
        .any(|r| r.device == "car-twofiles" && r.detector == "two_places"));
    // No visit of the one-file device inside the overlap is paid: one place at a time.
    let (lo, hi) = (overlap.start_ms, overlap.end_ms);
    assert!(hi - lo > 5 * 60_000, "{lo}..{hi}");
    use arrow_array::cast::AsArray;
    use arrow_array::types::TimestampMillisecondType;
    let mut paid = 0;
    for batch in tables::from_parquet(out.files["explain.parquet"].clone().into()).unwrap() {
        let device = batch.column_by_name("device").unwrap().as_string::<i32>();
        let first = batch
            .column_by_name("first_time")
            .unwrap()
            .as_primitive::<TimestampMillisecondType>();
        let last = batch
            .column_by_name("last_time")
            .unwrap()
            .as_primitive::<TimestampMillisecondType>();
        for i in (0..batch.num_rows()).filter(|&i| device.value(i) == "car-oneday") {
            paid += 1;
            let (f, l) = (first.value(i), last.value(i));
            // (A visit that also lies outside the window is paid, as for every window finding.)
            assert!(f < lo || l > hi, "a visit {f}..{l} inside the overlap {lo}..{hi}");
        }
    }
    assert!(paid > 0, "the parts outside the overlap are paid");
}

#[test]
fn rule_co_travel_alone_leaves_the_reputation_whole_and_evidence_does_not() {
    // Devices in one car or a convoy are ranked as one contributor (one of them withheld on the
    // shared part); honest convoys meet that too, so it is not evidence against either device.
    // A simulator's fingerprint, a jump, a replay (an offset beyond trust.copies.co_travel_s) is.
    let (_d, lake, fleet) = attack_lake();
    let epoch = fleet.epoch;
    let reg = Registry::parse(fleet.registry_csv.as_bytes(), "attacks").unwrap();
    let out = compute(&lake, &EpochInputs::new(epoch, 1_000_000_000, reg), &no_progress).unwrap();
    let mut withheld_by: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in flags(&out.files) {
        if matches!(r.effect.as_str(), "withhold_segment" | "withhold_window") {
            withheld_by.entry(r.device).or_default().insert(r.detector);
        }
    }
    let reputation: BTreeMap<String, (u64, bool)> = tables::from_parquet(out.files["trust.parquet"].clone().into())
        .unwrap()
        .iter()
        .flat_map(|b| tables::trust_rows(b).unwrap())
        .map(|(d, r, f)| (d, (r, f)))
        .collect();
    // Withholding findings that are not evidence (Finding::is_cheating).
    let not_evidence = ["stale", "stationary", "sparse_fill", "clock_overlap", "co_travel"];
    let (mut co_travel_only, mut evidence) = (0, 0);
    for (device, detectors) in &withheld_by {
        let (r, flagged) = reputation[device];
        let cheating = detectors.iter().any(|d| !not_evidence.contains(&d.as_str()));
        assert_eq!(flagged, cheating, "{device}: {detectors:?}");
        assert_eq!(r < 1_000_000, cheating, "{device}: {detectors:?} -> {r}");
        co_travel_only += usize::from(detectors.iter().all(|d| d == "co_travel"));
        evidence += usize::from(cheating);
    }
    assert!(co_travel_only > 10 && evidence > 10, "{withheld_by:?}");
}

/// The attack fleet's lake with three copies of honest trips whose clocks are scaled (the
/// red-team trial's evasion: ×0.95 and ×1.05, so the copy "drives" 5 % faster or slower),
/// starting 30 s before the original to take rank 1 in its cells, or a day later; received a
/// day after the original. Returns the lake, the registry with the copies' wallets, the epoch
/// and each copy's (device, span in ms).
fn scaled_copy_lake() -> (
    tempfile::TempDir,
    Lake,
    Registry,
    tessera::epoch::Epoch,
    Vec<(String, i64)>,
) {
    copied_lake(
        "scaled",
        &[
            ("honest-01", 0.95, -30_000, false),
            ("honest-04", 1.05, 86_400_000, false),
            ("honest-07", 0.95, 86_400_000, false),
        ],
    )
}

/// The attack fleet's lake with copies of honest trips per `plan` (original device, time
/// scale, start against the original's in ms, driven in reverse: fixes in reverse order, the
/// clock mirrored), named `{prefix}-{n}` and received a day after their originals.
fn copied_lake(
    prefix: &str,
    plan: &[(&str, f64, i64, bool)],
) -> (
    tempfile::TempDir,
    Lake,
    Registry,
    tessera::epoch::Epoch,
    Vec<(String, i64)>,
) {
    let (d, lake, fleet) = attack_lake();
    let mut reg_csv = fleet.registry_csv.clone();
    let (mut ups, mut copies) = (Vec::new(), Vec::new());
    for (n, &(dev, scale, start, reverse)) in plan.iter().enumerate() {
        let o = fleet.files.iter().find(|f| f.device == dev).unwrap();
        let mut fixes = tessera::ingest::parse(&o.bytes).fixes;
        let (t0, t1) = (fixes[0].time_ms, fixes[fixes.len() - 1].time_ms);
        if reverse {
            fixes.reverse();
        }
        let copy: Vec<tessera::fix::Fix> = fixes
            .iter()
            .map(|f| {
                let mut g = f.clone();
                let since = if reverse { t1 - f.time_ms } else { f.time_ms - t0 };
                g.time_ms = t0 + start + (since as f64 * scale) as i64;
                g.speed_mps = f.speed_mps.map(|v| v / scale as f32);
                if reverse {
                    g.course_deg = f.course_deg.map(|c| (c + 180.0) % 360.0);
                }
                g
            })
            .collect();
        let bytes = tables::to_parquet(&tables::fixes_schema(), &tables::fixes_to_batches("x", &copy)).unwrap();
        let name = format!("{prefix}-{n}");
        ups.push((name.clone(), bytes, o.received_ms + 86_400_000));
        copies.push((name.clone(), copy[copy.len() - 1].time_ms - copy[0].time_ms));
        reg_csv.push_str(&format!("{name},0x{}\n", format!("{:02x}", 0xb0 + n).repeat(20)));
    }
    ingest_all(&lake, &ups, "copy.parquet");
    let reg = Registry::parse(reg_csv.as_bytes(), "attacks").unwrap();
    (d, lake, reg, fleet.epoch, copies)
}

/// Ingest `(device, Parquet fixes, received ms)` uploads, each as a file named `name`; all accepted.
fn ingest_all(lake: &Lake, ups: &[(String, Vec<u8>, i64)], name: &str) {
    let ups: Vec<Upload> = ups
        .iter()
        .map(|(dev, bytes, rx)| Upload::new(dev, name, bytes).received_at(*rx))
        .collect();
    assert!(lake.ingest_batch(&ups).iter().all(Result::is_ok));
}

/// The flags of a run matched by the time-scaled rule.
fn by_scale(files: &BTreeMap<String, Vec<u8>>) -> Vec<tables::FlagRow> {
    flags(files)
        .into_iter()
        .filter(|r| r.policy_key == "trust.copies.max_time_scale")
        .collect()
}

#[test]
fn rule_a_copy_with_a_scaled_clock_is_withheld_and_no_honest_driver_is_matched_by_scale() {
    // A constant-offset match does not see these copies (the offset drifts ~3 s a minute).
    let (_d, lake, reg, epoch, copies) = scaled_copy_lake();
    let out = compute(&lake, &EpochInputs::new(epoch, 1_000_000_000, reg), &no_progress).unwrap();
    let by_scale = by_scale(&out.files);
    for (dev, span) in &copies {
        let withheld: i64 = by_scale
            .iter()
            .filter(|r| &r.device == dev)
            .map(|r| r.end_ms - r.start_ms)
            .sum();
        assert!(
            withheld * 2 > *span,
            "{dev}: {withheld} of {span} ms withheld: {by_scale:#?}"
        );
        assert!(by_scale
            .iter()
            .filter(|r| &r.device == dev)
            .all(|r| r.effect == "withhold_window"));
    }
    assert!(
        by_scale.iter().all(|r| r.device.starts_with("scaled-")),
        "only the copies are matched by scale: {by_scale:#?}"
    );
    // the one a day later is a replay (evidence), the one 30 s early co-travels
    let detector = |dev: &str| by_scale.iter().find(|r| r.device == dev).map(|r| r.detector.clone());
    assert_eq!(detector("scaled-0").as_deref(), Some("co_travel"));
    assert_eq!(detector("scaled-1").as_deref(), Some("replay"));
}

/// Each device matched as a copy (`replay` or `co_travel`), with the anchors of its longest match.
fn matched_as_copies(files: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for r in flags(files) {
        if matches!(r.detector.as_str(), "replay" | "co_travel") {
            out.entry(r.device.clone()).or_insert(r.measured.clone());
        }
    }
    out
}

#[test]
fn rule_min_anchors_honest_drivers_under_fixed_time_lights_are_not_matched_as_copies() {
    // Forty honest drivers in a grid city whose lights all switch together on a 90 s cycle, with
    // queues, speeds and reactions of their own (`simulate::signals`): cars on one avenue whole
    // cycles apart are released together at each light, so their anchors keep one offset for a
    // while. Under the defaults before trust rule set 4 (min_anchors 6) that was a copy.
    use tessera::simulate::signals::signal_grid;
    let epoch: tessera::epoch::Epoch = "2026-W47".parse().unwrap();
    let fleet = signal_grid(11, epoch, 40);
    let d = tempfile::tempdir().unwrap();
    let lake = Lake::open(d.path()).unwrap();
    assert_eq!(fleet.ingest(&lake), fleet.files.len());
    let reg = Registry::parse(fleet.registry_csv.as_bytes(), "signals").unwrap();
    let now = EpochInputs::new(epoch, 1_000_000_000, reg);
    let run = |text: &str, rules: u32| {
        let mut i = now.clone();
        (i.policy_text, i.trust_rules) = (text.into(), rules);
        compute(&lake, &i, &no_progress).unwrap().files
    };
    let rules = tessera::trust::policy::TRUST_RULES;
    let matched = matched_as_copies(&run("", rules));
    let six = "[trust.copies]\nmin_anchors = 6\nmin_scaled_anchors = 12\n";
    let old = run(six, 4);
    let was = matched_as_copies(&old);
    eprintln!(
        "min_anchors 6 under rule set {rules}: {:#?}",
        matched_as_copies(&run(six, rules))
    );
    eprintln!("default: {matched:#?}\nmin_anchors 6: {was:#?}");
    assert!(matched.is_empty(), "honest drivers matched as copies: {matched:#?}");
    // 12 of the 40 at this seed (rule set 4): the fleet still shows what the default guards against
    assert!(was.len() >= 6, "{was:#?}");
    // An epoch published under rule set 3 with a policy that left min_anchors out is judged by
    // that set's default, 6, as it was when published.
    assert!(run("", 3)["flags.parquet"] == old["flags.parquet"]);
}

#[test]
fn rule_a_copy_driven_in_reverse_is_withheld_and_no_honest_driver_is_matched_reversed() {
    // The red-team trial's reversed copies: fixes in reverse order, the clock mirrored (kept,
    // ×0.96, or starting 30 s before the original ends); none of their anchor pairs is the
    // original's, so only the reversed lookup sees them.
    let (_d, lake, reg, epoch, copies) = copied_lake(
        "reversed",
        &[
            ("honest-02", 1.0, 86_400_000, true),
            ("honest-05", 0.96, 3_600_000, true),
            ("honest-08", 1.0, -30_000, true),
        ],
    );
    let now = EpochInputs::new(epoch, 1_000_000_000, reg);
    let reversed = |files: &BTreeMap<String, Vec<u8>>| -> Vec<tables::FlagRow> {
        flags(files)
            .into_iter()
            .filter(|r| r.policy_key == "trust.copies.reversed")
            .collect()
    };
    let found = reversed(&compute(&lake, &now, &no_progress).unwrap().files);
    for (dev, span) in &copies {
        let mine: Vec<&tables::FlagRow> = found.iter().filter(|r| &r.device == dev).collect();
        let withheld: i64 = mine.iter().map(|r| r.end_ms - r.start_ms).sum();
        assert!(
            withheld * 2 > *span,
            "{dev}: {withheld} of {span} ms withheld: {found:#?}"
        );
        assert!(
            mine.iter()
                .all(|r| (r.detector.as_str(), r.effect.as_str()) == ("replay", "withhold_window")),
            "{mine:#?}"
        );
        assert!(
            mine.iter().all(|r| r.measured.contains("driven in reverse")),
            "{mine:#?}"
        );
    }
    // (an attacker's forward replay of honest-02, received after reversed-0, follows it too)
    assert!(
        found.iter().all(|r| !r.device.starts_with("honest-")),
        "no honest driver is matched reversed: {found:#?}"
    );
    // an epoch published under rules 2 (before this rule) is judged without it
    let old = EpochInputs {
        trust_rules: 2,
        ..now.clone()
    };
    assert!(reversed(&compute(&lake, &old, &no_progress).unwrap().files).is_empty());
}

#[test]
fn rule_a_published_epoch_is_judged_by_its_own_trust_rules_through_verify_and_reruns() {
    // An epoch published under rules 1 (before the time-scaled rule) paid the copies; verify and
    // a re-run by this build judge it by rules 1 again, so its bytes stand. A new epoch gets
    // the current rules, recorded in its manifest.
    use tessera::pipeline::{run, run_with, RunOptions};
    let (_d, lake, reg, epoch, _) = scaled_copy_lake();
    let now = EpochInputs::new(epoch, 1_000_000_000, reg);
    let old = EpochInputs {
        trust_rules: 1,
        ..now.clone()
    };
    assert!(by_scale(&compute(&lake, &old, &no_progress).unwrap().files).is_empty());
    run(&lake, &old, &no_progress).unwrap();
    let dir = lake.epoch_dir(&epoch);
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    assert!(!manifest.contains("trust_rules"), "rules 1 manifests predate the field");
    let before = std::fs::read(dir.join("flags.parquet")).unwrap();
    let r = tessera::audit::verify(&lake, &epoch, None, &no_progress).unwrap();
    assert!(r.ok, "{:?}", r.mismatches);
    assert!(
        run_with(&lake, &now, RunOptions::default(), &no_progress)
            .unwrap()
            .unchanged
    );
    assert_eq!(std::fs::read(dir.join("flags.parquet")).unwrap(), before);
    // the current rules: recorded, and they find the copies
    let next = compute(&lake, &now, &no_progress).unwrap();
    let m = String::from_utf8(next.files["manifest.json"].clone()).unwrap();
    let want = format!("\"trust_rules\": {}", tessera::trust::policy::TRUST_RULES);
    assert!(m.contains(&want), "{m}");
    assert!(!by_scale(&next.files).is_empty());
    // A manifest edited to claim the current rules: verify recomputes under them and names the
    // rows that differ (the copies' visits), not only the files.
    let claimed = manifest.replacen("  \"window\"", &format!("  {want},\n  \"window\""), 1);
    assert_ne!(claimed, manifest);
    std::fs::write(dir.join("manifest.json"), claimed).unwrap();
    let r = tessera::audit::verify(&lake, &epoch, None, &no_progress).unwrap();
    let explain = r
        .mismatches
        .iter()
        .find(|m| m.file == "explain.parquet" && m.problem.contains("recomputed"))
        .unwrap_or_else(|| panic!("{:?}", r.mismatches));
    assert!(
        explain.published_only.iter().any(|l| l.contains("device=scaled-")),
        "{explain:?}"
    );
}

/// A lake with two honest trucks (`truck-0`, `truck-1`, received in that order) driving one
/// gently curving motorway for 25 minutes at steady speeds `va` and `vb` m/s (±0.1 m/s of
/// drift, ~1.3 m of AR(1) position noise), a day and four hours apart; and their registry.
fn trucks_lake(va: f64, vb: f64) -> (tempfile::TempDir, Lake, Registry) {
    trucks_lake_seeded(va, vb, 17, 3000.0)
}

fn trucks_lake_seeded(va: f64, vb: f64, seed0: u64, bend: f64) -> (tempfile::TempDir, Lake, Registry) {
    let epoch: tessera::epoch::Epoch = "2026-W47".parse().unwrap();
    let mut seed = seed0;
    let mut rnd = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((seed >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    };
    let d = tempfile::tempdir().unwrap();
    let lake = Lake::open(d.path()).unwrap();
    let mut ups = Vec::new();
    let mut reg = String::from("device_id,wallet\n");
    for (n, (v0, start)) in [(va, 86_400_000i64 + 36_000_000), (vb, 2 * 86_400_000 + 50_400_000)]
        .into_iter()
        .enumerate()
    {
        let (mut s, mut vn, mut e) = (0.0f64, 0.0f64, (0.0f64, 0.0f64));
        let mut fixes = Vec::new();
        let (mut x, mut y) = (0.0f64, 0.0f64);
        for sec in 0..1500i64 {
            vn = 0.9 * vn + 0.05 * rnd();
            let v = v0 + vn;
            let heading = 90f64.to_radians() + 0.35 * (s / bend).sin();
            x += v * heading.sin();
            y += v * heading.cos();
            s += v;
            e = (0.9 * e.0 + 0.4 * rnd(), 0.9 * e.1 + 0.4 * rnd());
            let lat = 52.0 + (y + e.1) / 111_320.0;
            let lon = 5.0 + (x + e.0) / (111_320.0 * 52f64.to_radians().cos());
            let mut f = tessera::fix::Fix::new(epoch.start_ms() + start + sec * 1000, lat, lon);
            f.hdop = Some(0.8 + 0.1 * (sec % 3) as f32);
            f.sats = Some(9 + (sec % 4) as u8);
            f.speed_mps = Some(v as f32);
            f.course_deg = Some(heading.to_degrees() as f32);
            f.line = sec as u32;
            fixes.push(f);
        }
        let bytes = tables::to_parquet(&tables::fixes_schema(), &tables::fixes_to_batches("x", &fixes)).unwrap();
        let rx = fixes.last().unwrap().time_ms + 300_000;
        ups.push((format!("truck-{n}"), bytes, rx));
        reg.push_str(&format!("truck-{n},0x{}\n", format!("{:02x}", 0xc0 + n).repeat(20)));
    }
    ingest_all(&lake, &ups, "t.parquet");
    let reg = Registry::parse(reg.as_bytes(), "trucks").unwrap();
    (d, lake, reg)
}

#[test]
fn rule_min_unsteady_m_two_honest_trucks_at_limiter_speed_a_day_apart_are_not_a_replay() {
    // One truck at 24.70 m/s, the other at 24.5-26.0: up to 2.4 % apart they keep one offset
    // over 48-168 anchors, a `replay` under trust rule set 4 (withheld, and a quarter of the
    // reputation), which published epochs keep. From set 5 a replay needs the original to
    // depart from a steady pace; under set 5 one pair still measured 386 m over a 48-anchor
    // match (25.0: short steps between cell centres skewing the pace), above the 300 m
    // threshold; from set 6 none (its pace, and `min_unsteady_s`).
    let epoch: tessera::epoch::Epoch = "2026-W47".parse().unwrap();
    let (mut now_withheld, mut five_withheld, mut then_withheld) = (Vec::new(), Vec::new(), Vec::new());
    let speeds = [
        24.5, 24.6, 24.65, 24.7, 24.75, 24.8, 24.85, 24.9, 24.95, 24.98, 25.0, 25.02, 25.05, 25.1, 25.2, 25.3, 25.5,
        26.0,
    ];
    for vb in speeds {
        let (_d, lake, reg) = trucks_lake(24.70, vb);
        let withheld = |inputs: &EpochInputs| -> Vec<(String, String)> {
            flags(&compute(&lake, inputs, &no_progress).unwrap().files)
                .into_iter()
                .filter(|r| r.effect.starts_with("withhold"))
                .map(|r| (r.device, r.detector))
                .collect()
        };
        let now = EpochInputs::new(epoch, 1_000_000_000, reg);
        let five = EpochInputs {
            trust_rules: 5,
            ..now.clone()
        };
        let four = EpochInputs {
            trust_rules: 4,
            ..now.clone()
        };
        for (inputs, list) in [
            (&now, &mut now_withheld),
            (&five, &mut five_withheld),
            (&four, &mut then_withheld),
        ] {
            let w = withheld(inputs);
            assert!(
                w.iter().all(|(d, r)| (d.as_str(), r.as_str()) == ("truck-1", "replay")),
                "{vb}: {w:?}"
            );
            if !w.is_empty() {
                list.push(vb);
            }
        }
    }
    eprintln!(
        "withheld as replay: rule set 6 {now_withheld:?}, rule set 5 {five_withheld:?}, rule set 4 {then_withheld:?}"
    );
    assert!(now_withheld.is_empty(), "{now_withheld:?}");
    assert!(five_withheld.len() <= 1, "{five_withheld:?}");
    assert!(then_withheld.len() >= 16, "{then_withheld:?}");
}

/// `fixes` a day later with AR(1) receiver noise of about `sigma` metres (`rnd` uniform in
/// -1..1).
fn ar_copy(fixes: &[tessera::fix::Fix], sigma: f64, rnd: &mut impl FnMut() -> f64) -> Vec<tessera::fix::Fix> {
    let mut e = (0.0f64, 0.0f64);
    fixes
        .iter()
        .map(|f| {
            let mut g = f.clone();
            e = (0.9 * e.0 + sigma * 0.75 * rnd(), 0.9 * e.1 + sigma * 0.75 * rnd());
            g.time_ms += 86_400_000;
            g.lat += e.1 / 111_320.0;
            g.lon += e.0 / 55_000.0;
            g
        })
        .collect()
}

/// Uploads as `ingest_all` takes them: (device, bytes, receipt ms).
type Uploads = Vec<(String, Vec<u8>, i64)>;

/// Upload `pieces` as files of device `name` received at `rx`, registered to wallet
/// `0x{byte}{byte}…`.
fn add_copy(
    (ups, reg_csv): (&mut Uploads, &mut String),
    name: &str,
    byte: usize,
    pieces: &[&[tessera::fix::Fix]],
    rx: i64,
) {
    for piece in pieces {
        let bytes = tables::to_parquet(&tables::fixes_schema(), &tables::fixes_to_batches("x", piece)).unwrap();
        ups.push((name.to_string(), bytes, rx));
    }
    reg_csv.push_str(&format!("{name},0x{}\n", format!("{byte:02x}").repeat(20)));
}

/// A seeded uniform generator in -1..1.
fn uniform(mut seed: u64) -> impl FnMut() -> f64 {
    move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((seed >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

#[test]
fn rule_join_sources_a_copy_uploaded_as_five_minute_files_is_matched_whole() {
    // Copies of the attack fleet's honest trips a day later with ~1.5 m AR(1) noise, each
    // uploaded as files of five minutes: few files reach `min_anchors` (14) alone. From trust
    // rule set 7 the copy search joins a device's files that follow each other within
    // `journey_gap_s` into one trace; under set 6 each file was compared alone.
    let (_d, lake, fleet) = attack_lake();
    let mut reg_csv = fleet.registry_csv.clone();
    let (mut ups, mut rnd, mut n) = (Vec::new(), uniform(7), 0);
    for o in fleet.files.iter().filter(|f| f.device.starts_with("honest-0")) {
        let copy = ar_copy(&tessera::ingest::parse(&o.bytes).fixes, 1.5, &mut rnd);
        let t0 = copy[0].time_ms;
        let pieces: Vec<&[tessera::fix::Fix]> = copy
            .chunk_by(|a, b| (a.time_ms - t0) / 300_000 == (b.time_ms - t0) / 300_000)
            .collect();
        let rx = o.received_ms + 2 * 86_400_000;
        add_copy(
            (&mut ups, &mut reg_csv),
            &format!("split-{n:02}"),
            0x40 + n,
            &pieces,
            rx,
        );
        n += 1;
    }
    ingest_all(&lake, &ups, "piece.parquet");
    let reg = Registry::parse(reg_csv.as_bytes(), "attacks").unwrap();
    let now = EpochInputs::new(fleet.epoch, 1_000_000_000, reg);
    let matched = |rules: u32| -> BTreeMap<String, (usize, i64)> {
        let out = compute(
            &lake,
            &EpochInputs {
                trust_rules: rules,
                ..now.clone()
            },
            &no_progress,
        )
        .unwrap();
        let mut by: BTreeMap<String, (usize, i64)> = BTreeMap::new();
        for r in flags(&out.files)
            .iter()
            .filter(|r| r.device.starts_with("split") && r.detector == "replay")
        {
            let e = by.entry(r.device.clone()).or_default();
            (e.0, e.1) = (e.0 + 1, e.1 + r.end_ms - r.start_ms);
        }
        by
    };
    let (seven, six) = (matched(7), matched(6));
    eprintln!(
        "{} uploads of {n} copies; replay rows and ms withheld: rule set 7 {seven:?}, rule set 6 {six:?}",
        ups.len()
    );
    assert!(ups.len() >= 4 * n, "{}", ups.len());
    // 29 of 30 matched, ~1,150 s withheld each, against 16 and ~250-840 s of single files
    assert!(seven.len() * 10 >= n * 9, "{seven:?}");
    let total = |m: &BTreeMap<String, (usize, i64)>| m.values().map(|e| e.1).sum::<i64>();
    assert!(total(&seven) >= 2 * total(&six), "{seven:?} {six:?}");
    assert!(
        six.iter().all(|(d, e)| seven.get(d).is_some_and(|x| x.1 >= e.1)),
        "{six:?}"
    );
    // a match across files leaves one row per file it reaches
    assert!(seven.values().any(|e| e.0 > 1), "{seven:?}");
}

#[test]
fn rule_min_unsteady_m_copies_of_stop_and_go_trips_with_receiver_noise_stay_replays() {
    // Two copies of each trip of the attack fleet's honest drivers 00-09, with AR(1) receiver
    // noise (~1 and ~2.5 m), a day later: the price of rule set 5 is the copies whose matched
    // stretches keep a steady pace. 60 of 60 are replays under set 4, 58 under set 5 (the two
    // copies of one trip keep only co-travel or the stationary rule's findings), 58 under set
    // 6 (the same two: its robust pace and `min_unsteady_s` cost no copy here), and under 7,
    // whose copies lose at least as much time as under 6.
    let (_d, lake, fleet) = attack_lake();
    let mut reg_csv = fleet.registry_csv.clone();
    let mut ups = Vec::new();
    let mut rnd = uniform(99);
    let mut n = 0;
    for o in fleet.files.iter().filter(|f| f.device.starts_with("honest-0")) {
        for sigma in [1.0f64, 2.5] {
            let copy = ar_copy(&tessera::ingest::parse(&o.bytes).fixes, sigma, &mut rnd);
            let rx = o.received_ms + 2 * 86_400_000;
            add_copy(
                (&mut ups, &mut reg_csv),
                &format!("arcopy-{n:02}"),
                0x10 + n,
                &[&copy],
                rx,
            );
            n += 1;
        }
    }
    ingest_all(&lake, &ups, "c.parquet");
    let reg = Registry::parse(reg_csv.as_bytes(), "attacks").unwrap();
    let now = EpochInputs::new(fleet.epoch, 1_000_000_000, reg);
    let mut span6 = BTreeMap::new();
    for rules in [4, 5, 6, 7] {
        let inp = EpochInputs {
            trust_rules: rules,
            ..now.clone()
        };
        let out = compute(&lake, &inp, &no_progress).unwrap();
        let rows = flags(&out.files);
        let mut by: BTreeMap<String, (i64, BTreeSet<String>)> = BTreeMap::new();
        for r in rows
            .iter()
            .filter(|r| r.device.starts_with("arcopy") && r.effect.starts_with("withhold"))
        {
            let e = by.entry(r.device.clone()).or_default();
            e.0 += r.end_ms - r.start_ms;
            e.1.insert(r.detector.clone());
        }
        let replays = by.values().filter(|(_, det)| det.contains("replay")).count();
        eprintln!("rule set {rules}: {replays} of {n} copies matched as replay: {by:?}");
        assert_eq!(n, 60);
        assert!(replays >= if rules == 4 { 60 } else { 57 }, "{rules}: {replays}");
        // rule set 7 withholds every chain at the replay's offset: never less time than set 6
        if rules == 6 {
            span6 = by.iter().map(|(d, e)| (d.clone(), e.0)).collect();
        } else if rules == 7 {
            let (was, now): (i64, i64) = (span6.values().sum(), by.values().map(|e| e.0).sum());
            eprintln!("withheld ms: rule set 6 {was}, rule set 7 {now}");
            assert!(by.iter().all(|(d, e)| e.0 >= span6[d]), "{span6:?}");
            assert!(now > was, "{now} vs {was}");
        }
    }
}

#[test]
fn rule_min_unsteady_s_honest_trucks_at_one_limiter_speed_on_three_roads_are_not_replays() {
    // 144 pairs of honest trucks a day apart (8 noise seeds, roads bending every 1.5, 3 and 6
    // km, the later truck at 24.6-25.1 m/s against 24.70): rule set 5 withheld 9 as `replay`,
    // the cell-centre geometry of long steady matches measuring 319-1,253 m, over its 300 m
    // threshold. From rule set 6 the pace is not skewed by short steps and the departure must
    // also last `min_unsteady_s` (25 s) at that pace: none.
    let epoch: tessera::epoch::Epoch = "2026-W47".parse().unwrap();
    let (mut now, mut then, mut n) = (Vec::new(), Vec::new(), 0);
    for seed in [3u64, 5, 7, 11, 13, 19, 23, 29] {
        for bend in [1500.0, 3000.0, 6000.0] {
            for vb in [24.6, 24.7, 24.8, 24.9, 25.0, 25.1] {
                let (_d, lake, reg) = trucks_lake_seeded(24.70, vb, seed, bend);
                let inputs = EpochInputs::new(epoch, 1_000_000_000, reg);
                for (rules, list) in [(6, &mut now), (5, &mut then)] {
                    let inp = EpochInputs {
                        trust_rules: rules,
                        ..inputs.clone()
                    };
                    let w: Vec<(String, String)> = flags(&compute(&lake, &inp, &no_progress).unwrap().files)
                        .into_iter()
                        .filter(|r| r.effect.starts_with("withhold"))
                        .map(|r| (r.detector, r.measured))
                        .collect();
                    if !w.is_empty() {
                        list.push((seed, bend, vb, w));
                    }
                }
                n += 1;
            }
        }
    }
    eprintln!(
        "of {n} pairs withheld: rule set 6 {now:?}; rule set 5 {} {then:?}",
        then.len()
    );
    assert_eq!(n, 144);
    assert!(now.is_empty(), "{now:?}");
    assert!(then.len() >= 5, "{then:?}");
}
