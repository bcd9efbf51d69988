//! Property tests (proptest) of the invariants money and ingest rest on: amounts sum to the pool
//! for any points, merkle proofs verify for any distribution, any order of one receiver cycle's
//! sentences gives the same fixes, and `verify` after a run is clean.

#[path = "support/corpus.rs"]
mod support;

use proptest::prelude::*;
use tessera::fix::Fix;
use tessera::ingest::nmea;
use tessera::merkle::{build, verify_claim, Scheme};
use tessera::rewards::allocate;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn prop_amounts_sum_to_the_pool_for_any_points(
        pool in prop_oneof![0u128..1000, any::<u128>()],
        points in proptest::collection::vec(prop_oneof![0u128..10, 0u128..u64::MAX as u128, 0u128..(1u128 << 100)], 0..40),
    ) {
        let rows: Vec<(String, u128)> = points.iter().enumerate().map(|(i, p)| (format!("r{i:03}"), *p)).collect();
        let total: u128 = points.iter().sum();
        let shares = allocate(pool, &rows).unwrap();
        let sum: u128 = shares.iter().map(|s| s.amount).sum();
        prop_assert_eq!(sum, if total == 0 { 0 } else { pool });
        // Largest remainder: nobody is more than one unit away from the exact share, and more
        // points never get less.
        for s in &shares {
            let exact = ethnum::U256::from(pool) * ethnum::U256::from(s.points) / ethnum::U256::from(total);
            let a = ethnum::U256::from(s.amount);
            prop_assert!(a == exact || a == exact + 1);
        }
        for a in &shares {
            for b in &shares {
                if a.points > b.points {
                    prop_assert!(a.amount >= b.amount);
                }
            }
        }
    }

    #[test]
    fn prop_merkle_proofs_verify_for_any_distribution(
        wallets in proptest::collection::btree_map(any::<[u8; 20]>(), any::<u128>(), 1..30),
        keys in proptest::collection::btree_map(any::<[u8; 32]>(), any::<u64>(), 1..30),
    ) {
        let evm: Vec<(String, u128)> = wallets.iter().map(|(w, a)| (format!("0x{}", hex::encode(w)), *a)).collect();
        let sol: Vec<(String, u128)> = keys.iter().map(|(k, a)| (bs58::encode(k).into_string(), u128::from(*a))).collect();
        for (scheme, rows) in [(Scheme::EvmStandardV1, evm), (Scheme::SolanaSha256V1, sol)] {
            let d = build(scheme, &rows).unwrap();
            let root = d.root.clone().unwrap();
            for c in &d.claims {
                prop_assert!(verify_claim(scheme.as_str(), &root, c));
                // One unit more is not the same claim.
                let mut forged = c.clone();
                forged.amount = (c.amount.parse::<u128>().unwrap().wrapping_add(1)).to_string();
                prop_assert!(!verify_claim(scheme.as_str(), &root, &forged));
            }
        }
    }
}

/// The UTC time-of-day field of a sentence that carries one (GGA, RMC, GLL, GNS, ZDA, PUBX,00).
fn time_field(sentence: &str) -> Option<&str> {
    let f: Vec<&str> = sentence.split(['*', ',']).collect();
    let kind = f.first()?.get(3..)?;
    let t = match kind {
        "GGA" | "RMC" | "GNS" | "ZDA" => f.get(1)?,
        "GLL" => f.get(5)?,
        _ if f[0] == "$PUBX" && f.get(1) == Some(&"00") => f.get(2)?,
        _ => return None,
    };
    (!t.is_empty()).then_some(*t)
}

/// The receiver cycles of a log: runs of lines whose timed sentences share one time, each with
/// the untimed sentences (GSA, GSV, VTG, ...) that follow them.
fn cycles(text: &str) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut cur_time: Option<String> = None;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        let t = line.find('$').and_then(|i| time_field(&line[i..])).map(str::to_string);
        match (&t, &cur_time) {
            (Some(t), Some(c)) if t == c => {}
            (Some(_), _) => {
                out.push(Vec::new());
                cur_time = t.clone();
            }
            (None, _) if out.is_empty() => out.push(Vec::new()),
            _ => {}
        }
        out.last_mut().expect("pushed").push(line.to_string());
    }
    out
}

/// Real logs whose cycles are whole (every cycle has its position sentences), from the sample
/// fleet and the shared corpus.
fn real_logs() -> Vec<(String, Vec<Vec<String>>)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("../../data/sample/car-001/2026-W46-trip1.nmea")];
    if let Some(dir) = support::corpus("nmea/gpsd") {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        v.sort();
        files.extend(v);
    }
    files
        .into_iter()
        .filter_map(|f| {
            let text = String::from_utf8_lossy(&std::fs::read(&f).ok()?).into_owned();
            let c: Vec<Vec<String>> = cycles(&text).into_iter().take(400).collect();
            (c.len() > 2).then(|| (f.display().to_string(), c))
        })
        .collect()
}

/// Fixes without their line numbers (which follow the order of the lines).
fn fixes_of(cycles: &[Vec<String>]) -> Vec<Fix> {
    let text: String = cycles.iter().flatten().map(|l| format!("{l}\n")).collect();
    let mut f = nmea::parse(text.as_bytes()).fixes;
    for x in &mut f {
        x.line = 0;
    }
    f
}

#[test]
fn prop_any_order_of_the_timed_sentences_of_a_cycle_gives_the_same_fixes() {
    let logs = real_logs();
    assert!(!logs.is_empty());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    });
    let mut checked = 0usize;
    for (name, log) in &logs {
        let want = fixes_of(log);
        let strategy = proptest::collection::vec(any::<u64>(), log.len());
        runner
            .run(&strategy, |seeds| {
                let permuted: Vec<Vec<String>> = log
                    .iter()
                    .zip(&seeds)
                    .map(|(c, seed)| shuffle_timed(c, *seed))
                    .collect();
                prop_assert_eq!(&fixes_of(&permuted), &want, "{}", name);
                Ok(())
            })
            .unwrap();
        checked += 1;
    }
    eprintln!("{checked} logs, 64 permutations of their cycles each");
}

/// The cycle with its timed sentences (GGA, RMC, ZDA, GLL, GNS) in an order picked by `seed`,
/// each untimed sentence kept after the timed one it followed.
fn shuffle_timed(cycle: &[String], seed: u64) -> Vec<String> {
    // Groups: a timed sentence and the untimed ones after it; leading untimed lines stay first.
    let mut head = Vec::new();
    let mut groups: Vec<Vec<String>> = Vec::new();
    for l in cycle {
        let timed = l.find('$').and_then(|i| time_field(&l[i..])).is_some();
        match groups.last_mut() {
            Some(g) if !timed => g.push(l.clone()),
            None if !timed => head.push(l.clone()),
            _ => groups.push(vec![l.clone()]),
        }
    }
    let mut s = seed;
    for i in (1..groups.len()).rev() {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        groups.swap(i, (s >> 33) as usize % (i + 1));
    }
    head.into_iter().chain(groups.into_iter().flatten()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]

    /// For any small fleet (seed, drivers, trips) and pool: run both epochs, then `verify`
    /// recomputes every output byte for byte.
    #[test]
    fn prop_verify_after_run_is_clean(seed in any::<u64>(), drivers in 4u32..8, trips in 1u32..3, pool in 1u128..u128::from(u64::MAX)) {
        use tessera::pipeline::{self, EpochInputs};
        let fleet = tessera::simulate::simulate(&tessera::simulate::SimConfig {
            seed,
            drivers,
            epochs: 2,
            trips,
            minutes: 2,
            ..tessera::simulate::SimConfig::default()
        });
        let d = tempfile::tempdir().unwrap();
        let lake = tessera::lake::Lake::open(d.path()).unwrap();
        for f in &fleet.files {
            lake.ingest(&f.device, &f.name, &f.bytes).unwrap();
        }
        let reg = tessera::registry::Registry::parse(fleet.registry_csv.as_bytes(), "sim").unwrap();
        for e in ["2026-W46", "2026-W47"] {
            let e: tessera::epoch::Epoch = e.parse().unwrap();
            pipeline::run(&lake, &EpochInputs::new(e, pool, reg.clone()), &pipeline::no_progress).unwrap();
            let r = tessera::audit::verify(&lake, &e, None, &pipeline::no_progress).unwrap();
            prop_assert!(r.ok, "{:?}", r.mismatches);
        }
    }
}
