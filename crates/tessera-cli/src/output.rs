//! How the command line talks: numbers, progress bars, JSON, summaries and errors. Commands call
//! these; nothing else prints formatting of its own beyond one-line messages.

use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use tessera::manifest::Status;
use tessera::pipeline::Summary;

/// `1234567` → `1,234,567`.
pub fn fmt_n(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Counts by reason, largest first: `teleport 12, hdop_too_high 3`, or `none`.
pub fn reasons_line(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    let mut v: Vec<(&String, &u64)> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .map(|(k, n)| format!("{k} {}", fmt_n(**n)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A progress bar on stderr, hidden when `quiet` (JSON output).
pub fn bar(len: u64, msg: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template("{msg:>14} [{bar:30}] {pos}/{len} {elapsed}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    b.set_message(msg.to_string());
    b
}

/// A progress callback of the pipeline that drives `pb`.
pub fn stage_progress(pb: &ProgressBar) -> impl Fn(&str, u64, u64) + Sync + '_ {
    move |stage: &str, done: u64, total: u64| {
        pb.set_message(stage.to_string());
        pb.set_length(total);
        pb.set_position(done);
    }
}

/// Print a value as pretty JSON on stdout. Every money and points field of tessera's types is
/// a decimal string, so no JSON reader rounds it.
pub fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// The human report of an epoch run.
pub fn print_summary(s: &Summary) {
    println!("epoch {}  [{} .. {})", s.epoch, s.window_start, s.window_end);
    println!(
        "  sources {}   fixes in {}   accepted {}   rejected {}",
        s.sources,
        fmt_n(s.fixes_in),
        fmt_n(s.fixes_accepted),
        fmt_n(s.rejected.values().sum())
    );
    println!("  rejected by reason: {}", reasons_line(&s.rejected));
    println!(
        "  cells {} (new {})   visits {}   prior state: {}",
        fmt_n(s.cells),
        fmt_n(s.new_cells),
        fmt_n(s.visits),
        s.previous_state.as_deref().unwrap_or("none (first epoch)")
    );
    println!("  recipients {}   points {}", s.recipients, s.points_total);
    match s.status {
        Status::NoPoints => println!("  pool {}: NO POINTS this epoch, nothing allocated", s.pool),
        Status::Allocated => {
            let unallocated: u128 = s.cap.as_ref().and_then(|c| c.unallocated.parse().ok()).unwrap_or(0);
            let balanced = s.pool.parse::<u128>().ok() == s.allocated.parse::<u128>().ok().map(|a| a + unallocated);
            println!(
                "  pool {}{}   allocated {}   {}",
                s.pool,
                s.pool_rule
                    .as_ref()
                    .map(|r| format!(" ([emission] {r})"))
                    .unwrap_or_default(),
                s.allocated,
                match (balanced, unallocated) {
                    (true, 0) => "Σ amounts = pool ✓".to_string(),
                    (true, u) => format!("Σ amounts + {u} left by the cap = pool ✓"),
                    _ => "Σ amounts ≠ pool ✗".to_string(),
                }
            )
        }
    }
    print_places(s);
    if s.top.is_empty() {
        return;
    }
    println!("  top recipients:");
    println!(
        "    {:<44} {:>16} {:>14} {:>7} {:>6}",
        "recipient", "amount", "points", "devices", "cells"
    );
    for r in s.top.iter().take(5) {
        println!(
            "    {:<44} {:>16} {:>14} {:>7} {:>6}",
            r.recipient, r.amount, r.points, r.devices, r.cells
        );
    }
}

/// Cap, roads, regions and bounties of an epoch summary (nothing without them).
fn print_places(s: &Summary) {
    if let Some(c) = &s.cap {
        println!(
            "  cap {} of the pool per wallet = {}: {} wallet(s) held at it",
            c.max_wallet_share, c.amount, c.capped
        );
    }
    if let Some(p) = &s.places
        && p.road_km_network != "0.000"
    {
        println!(
            "  roads: {} km in the network; covered {} km, {} km of it for the first time (only road cells earn)",
            p.road_km_network, p.road_km_covered, p.road_km_fresh
        );
    }
    if !s.regions.is_empty() {
        println!(
            "    {:<16} {:>8} {:>7} {:>7} {:>9} {:>8} {:>14}",
            "region", "weight", "cells", "fresh", "road km", "devices", "points"
        );
        for r in &s.regions {
            println!(
                "    {:<16} {:>8} {:>7} {:>7} {:>9} {:>8} {:>14}",
                r.region.as_deref().unwrap_or("(outside)"),
                r.weight.trim_end_matches('0').trim_end_matches('.'),
                r.cells,
                r.fresh_cells,
                r.road_km,
                r.contributors,
                r.points
            );
        }
    }
    for b in &s.bounties {
        println!(
            "  bounty {}: pool {} + {} rolled in = {}; paid {} to {} recipient(s) for {} points; rolled on {}, returned {}",
            b.id, b.pool, b.carried_in, b.available, b.allocated, b.recipients, b.points, b.carried_out, b.returned
        );
    }
}

/// The human form of `tessera explain`.
pub fn print_explanation(x: &tessera::audit::Explanation) {
    println!(
        "{} in epoch {}: {} base units ({}% of the pool) for {} points",
        x.recipient, x.epoch, x.amount, x.share_percent, x.points
    );
    println!("policy sha256 {}", x.policy_sha256);
    for d in &x.devices {
        println!();
        println!(
            "device {}: {} points from {} visits in {} cells ({} with points, {} discoveries)",
            d.device, d.points, d.visits, d.cells, d.visits_with_points, d.discoveries
        );
        for s in &d.sources {
            println!("  source {} ({})", s.name, short(&s.source));
        }
        let ranks: Vec<String> = d.ranks.iter().map(|(k, v)| format!("#{k}: {v}")).collect();
        println!("  ranks: {}", ranks.join(", "));
        println!("  rejected fixes: {}", reasons_line(&d.rejected));
        for e in &d.rejected_examples {
            println!(
                "    {} ({}) line {}: {} ({})",
                e.name,
                short(&e.source),
                e.line,
                e.reason,
                e.detail
            );
        }
    }
    if !x.flags.is_empty() {
        println!();
        println!("trust evidence (why it got less; all rows in flags.parquet):");
        for e in x.flags.iter().take(12) {
            print_flag(e);
        }
        if x.flags.len() > 12 {
            println!("  … {} more", x.flags.len() - 12);
        }
    }
    if x.top_visits.is_empty() {
        return;
    }
    println!();
    println!("top visits:");
    for v in &x.top_visits {
        let age = v
            .age_epochs
            .map_or("never covered".to_string(), |a| format!("{a} epochs"));
        println!(
            "  cell {} device {} rank {} age {} rank×{} fresh×{} quality×{} = {} points",
            v.cell, v.device, v.rank, age, v.rank_w, v.freshness_w, v.quality_w, v.points
        );
    }
}

/// UTC ms as RFC 3339 (seconds).
pub fn utc(ms: i64) -> String {
    tessera::ingest::receipt::fmt_ms(ms)
}

/// One evidence row for people.
pub fn print_flag(e: &tessera::tables::FlagRow) {
    println!(
        "  {} {} → {}: {} (threshold {}, {}) {}",
        utc(e.start_ms),
        e.detector,
        e.effect,
        e.measured,
        e.threshold,
        e.policy_key,
        e.source_name
    );
}

fn short(hash: &str) -> &str {
    &hash[..16.min(hash.len())]
}

/// An error and its causes, once each: a cause whose text the message already holds is not
/// repeated (DataFusion and the lake put their source into their own message).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if text.contains(c.trim()) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&c);
    }
    text
}

/// Let a closed stdout (`tessera sql ... | head`) end the process quietly with SIGPIPE's status
/// (141) instead of a panic in `println!`. Not for servers, which handle their sockets' errors.
pub fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
