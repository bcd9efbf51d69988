//! `tessera`: the command line of the tessera reward pipeline.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use tessera::epoch::Epoch;
use tessera::lake::Lake;
use tessera::pipeline::{self, EpochInputs, Summary};
use tessera::policy::Policy;
use tessera::registry::Registry;

#[cfg(feature = "sql")]
mod sql;

mod sample {
    include!(concat!(env!("OUT_DIR"), "/sample.rs"));
}

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Exact, replayable rewards for decentralized mapping networks"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the whole pipeline on the embedded sample fleet and print a summary.
    Demo {
        /// Lake directory to create (replaced if it is an earlier demo lake).
        #[arg(long, default_value = "demo-lake")]
        lake: PathBuf,
        /// Pool per epoch, in base units.
        #[arg(long, default_value = "1000000000000")]
        pool: String,
        /// Print machine-readable JSON instead of the report.
        #[arg(long)]
        json: bool,
    },
    /// Generate a deterministic synthetic fleet (NMEA/BlackVue/GnssLogger/GPX + registry).
    Simulate(SimArgs),
    /// Ingest trace files into a lake (idempotent: the same bytes twice is a no-op).
    Ingest {
        /// Lake directory.
        #[arg(long)]
        lake: PathBuf,
        /// Device id the FILES belong to.
        #[arg(long, required_unless_present = "tree", requires = "files")]
        device: Option<String>,
        /// Ingest a directory tree laid out as DIR/<device-id>/<files> (many devices at once).
        #[arg(long, conflicts_with = "device")]
        tree: Option<PathBuf>,
        /// Trace files (.nmea, .log, .gps, .txt, .gpx ...).
        files: Vec<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Rows per record batch when writing fixes (memory knob; outputs of epochs do not
        /// depend on it).
        #[arg(long, default_value_t = 65_536)]
        batch_rows: usize,
    },
    /// Epoch commands.
    Epoch {
        #[command(subcommand)]
        cmd: EpochCmd,
    },
    /// Print the default policy (policy v1) as TOML.
    Policy,
    /// Print a recipient's amount, leaf and merkle proof as JSON (what a wallet app passes to the
    /// claim contract).
    Proof {
        /// Lake directory.
        #[arg(long)]
        lake: PathBuf,
        /// ISO week.
        #[arg(long)]
        epoch: String,
        /// Wallet address.
        #[arg(required_unless_present = "all")]
        recipient: Option<String>,
        /// Every recipient's claim.
        #[arg(long, conflicts_with = "recipient")]
        all: bool,
    },
    /// Capture NMEA from a GNSS receiver on a serial port into rotating files (Ctrl-C to stop).
    Capture {
        /// Serial device, e.g. /dev/ttyUSB0.
        #[arg(long)]
        port: String,
        /// Baud rate, or `auto` to try the usual rates until valid sentences appear.
        #[arg(long, default_value = "9600")]
        baud: String,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Start a new file after this many seconds.
        #[arg(long, default_value_t = 3600)]
        rotate_secs: u64,
        /// Start a new file at this many bytes.
        #[arg(long, default_value_t = 64 << 20)]
        rotate_bytes: u64,
        /// Print the final summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve the signed-upload endpoint (POST /v1/uploads, GET /health, GET /metrics).
    Serve {
        /// Lake directory.
        #[arg(long)]
        lake: PathBuf,
        /// Registry with device public keys (device_id,wallet,pubkey).
        #[arg(long)]
        registry: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Largest accepted upload, bytes.
        #[arg(long, default_value_t = 16 << 20)]
        max_body: usize,
        /// Largest accepted clock difference between device and server, seconds.
        #[arg(long, default_value_t = 300)]
        max_skew_secs: i64,
    },
    /// Sign and upload trace files to a tessera server (retries transient failures).
    Upload {
        /// Server URL, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        server: String,
        /// Device id.
        #[arg(long)]
        device: String,
        /// Key file from `tessera keygen`.
        #[arg(long)]
        key: PathBuf,
        /// Attempts per file.
        #[arg(long, default_value_t = 5)]
        attempts: u32,
        /// Files to upload.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make a device key pair: writes the secret key file, prints the public key for the registry.
    Keygen {
        /// Key file to create (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
    /// Run SQL over the lake (DataFusion, H3 functions); no query opens an interactive prompt.
    #[cfg(feature = "sql")]
    Sql {
        /// Lake directory.
        #[arg(long)]
        lake: PathBuf,
        /// The query.
        query: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: sql::Format,
        /// Write the result to a file (atomically) instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// List the lake's SQL tables and their columns.
    #[cfg(feature = "sql")]
    Tables {
        /// Lake directory.
        #[arg(long)]
        lake: PathBuf,
    },
    /// Export lake data for GIS tools.
    Export {
        #[command(subcommand)]
        what: ExportCmd,
    },
    /// Draw an epoch's cells as a PNG map coloured by freshness or points, with legend and scale.
    Render {
        /// Lake directory.
        #[arg(long)]
        lake: PathBuf,
        /// ISO week.
        #[arg(long)]
        epoch: String,
        /// Output PNG file.
        #[arg(long)]
        output: PathBuf,
        /// What the colours show: `freshness` (epochs since each cell was last covered) or
        /// `points` (points earned in the epoch, quantile classes).
        #[arg(long, default_value = "freshness")]
        color: String,
        /// Image width in pixels (800..=8000).
        #[arg(long, default_value_t = 1200)]
        width: u32,
        /// Map height in pixels (default: from the data's aspect ratio).
        #[arg(long)]
        height: Option<u32>,
        /// Draw at this H3 resolution, merging finer cells (default: the finest at which a cell
        /// edge is at least 2 pixels).
        #[arg(long)]
        res: Option<u8>,
    },
    /// Explain a recipient's amount: devices, cells, ranks, multipliers, and rejected fixes.
    Explain {
        /// Lake directory.
        #[arg(long)]
        lake: PathBuf,
        /// ISO week.
        #[arg(long)]
        epoch: String,
        /// Wallet address.
        recipient: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ExportCmd {
    /// An epoch's cells (coverage state with the epoch's visits and points) as GeoParquet 1.1:
    /// WKB polygons, a bbox covering column, `geo` metadata.
    Cells {
        /// Lake directory.
        #[arg(long)]
        lake: PathBuf,
        /// ISO week.
        #[arg(long)]
        epoch: String,
        /// Output file.
        #[arg(long)]
        output: PathBuf,
    },
}

#[derive(Subcommand)]
enum EpochCmd {
    /// Compute an epoch's rewards and write epochs/E/ atomically.
    Run(RunArgs),
    /// Recompute an epoch from the lake and compare with the published files: exit 0 only on an
    /// exact match, otherwise print which file and which rows differ.
    Verify {
        /// Lake directory.
        #[arg(long)]
        lake: PathBuf,
        /// ISO week.
        #[arg(long)]
        epoch: String,
        /// Check against this manifest instead of LAKE/epochs/E/manifest.json.
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// What-if: recompute an epoch under another policy without writing, and show the change per
    /// recipient.
    Diff {
        /// Lake directory.
        #[arg(long)]
        lake: PathBuf,
        /// ISO week.
        #[arg(long)]
        epoch: String,
        /// The other policy.
        #[arg(long)]
        policy: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Lake directory.
    #[arg(long)]
    lake: PathBuf,
    /// ISO week, e.g. 2026-W47.
    #[arg(long)]
    epoch: String,
    /// Pool in integer base units (at most 10^38 - 1, the range of Decimal128(38,0)).
    #[arg(long)]
    pool: String,
    /// Policy TOML (default: policy v1).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Device registry CSV (default: LAKE/registry.csv).
    #[arg(long)]
    registry: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Rows per record batch when reading fixes (memory knob; the outputs do not depend on it).
    #[arg(long, default_value_t = 65_536)]
    batch_rows: usize,
    /// Visits held in memory before they spill to disk in the staging directory (memory knob:
    /// ~60 bytes each; the outputs do not depend on it).
    #[arg(long, default_value_t = tessera::lake::DEFAULT_MAX_VISITS)]
    max_visits: usize,
}

#[derive(Args)]
struct SimArgs {
    /// Output directory (DIR/<device>/<files> and DIR/registry.csv).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    #[arg(long, default_value_t = 10)]
    drivers: u32,
    /// First epoch.
    #[arg(long, default_value = "2026-W46")]
    start: String,
    #[arg(long, default_value_t = 2)]
    epochs: u32,
    /// Trips per driver per epoch.
    #[arg(long, default_value_t = 2)]
    trips: u32,
    /// Minutes per trip (1 Hz).
    #[arg(long, default_value_t = 10)]
    minutes: u32,
    /// Scale mode: about this many fixes (e.g. 1e8) in epoch --start, 14 h of driving per
    /// driver, written straight into the lake at --out as Parquet sources (in parallel,
    /// deterministic), with the registry at --out/registry.csv.
    #[arg(long)]
    fixes: Option<String>,
    /// With --fixes: `parquet` (straight into the lake at --out) or `nmea` (one NMEA log per
    /// driver as --out/<device>/<epoch>.nmea, for `tessera ingest --tree`).
    #[arg(long, default_value = "parquet", value_parser = ["parquet", "nmea"], requires = "fixes")]
    format: String,
}

fn parse_count(s: &str) -> Result<u64> {
    let clean: String = s.chars().filter(|c| *c != '_').collect();
    if let Ok(v) = clean.parse::<u64>() {
        return Ok(v);
    }
    match clean.split_once(['e', 'E']) {
        Some((m, e)) => {
            let (m, e): (u64, u32) = (
                m.parse().map_err(|_| anyhow!("{s:?}: not a count"))?,
                e.parse().map_err(|_| anyhow!("{s:?}: not a count"))?,
            );
            10u64
                .checked_pow(e)
                .and_then(|p| p.checked_mul(m))
                .ok_or_else(|| anyhow!("{s:?}: too large"))
        }
        None => bail!("{s:?}: not a count (1000000, 1_000_000 or 1e6)"),
    }
}

fn parse_pool(s: &str) -> Result<u128> {
    let clean: String = s.chars().filter(|c| *c != '_').collect();
    let v: u128 = clean
        .parse()
        .map_err(|_| anyhow!("--pool {s:?} is not a non-negative integer number of base units"))?;
    if v > 99_999_999_999_999_999_999_999_999_999_999_999_999 {
        bail!("--pool {s} exceeds 10^38 - 1, the largest amount Decimal128(38,0) can store");
    }
    Ok(v)
}

fn bar(len: u64, msg: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template("{msg:>14} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap()
            .progress_chars("=> "),
    );
    b.set_message(msg.to_string());
    b
}

struct IngestTotals {
    sources: u64,
    new: u64,
    duplicates: u64,
    fixes: u64,
    rejected: std::collections::BTreeMap<String, u64>,
    failed: Vec<String>,
}

/// Files per group commit, and bytes read into memory per group commit.
const COMMIT_FILES: usize = 512;
const COMMIT_BYTES: u64 = 512 << 20;

fn ingest_jobs(lake: &Lake, jobs: Vec<(String, PathBuf)>, quiet: bool) -> Result<IngestTotals> {
    let pb = bar(jobs.len() as u64, "ingest", quiet);
    // Group commits of up to COMMIT_FILES files / COMMIT_BYTES bytes: files are read and parsed
    // in parallel, then made durable together (Lake::ingest_batch).
    let mut groups: Vec<&[(String, PathBuf)]> = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, (_, path)) in jobs.iter().enumerate() {
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if i > start && (i - start >= COMMIT_FILES || bytes + len > COMMIT_BYTES) {
            groups.push(&jobs[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += len;
    }
    groups.push(&jobs[start..]);
    let mut results: Vec<(String, std::result::Result<tessera::lake::IngestOutcome, String>)> = Vec::new();
    for group in groups {
        let read: Vec<std::io::Result<Vec<u8>>> = group.par_iter().map(|(_, p)| std::fs::read(p)).collect();
        let names: Vec<String> = group
            .iter()
            .map(|(_, p)| p.file_name().unwrap_or_default().to_string_lossy().to_string())
            .collect();
        let uploads: Vec<tessera::lake::Upload> = group
            .iter()
            .zip(&read)
            .zip(&names)
            .filter_map(|(((device, _), bytes), name)| {
                Some(tessera::lake::Upload {
                    device,
                    name,
                    bytes: bytes.as_ref().ok()?,
                })
            })
            .collect();
        // One outcome per file that could be read, in order.
        let mut outcomes = lake.ingest_batch(&uploads).into_iter();
        for ((_, path), bytes) in group.iter().zip(&read) {
            let r = match bytes {
                Err(e) => Err(e.to_string()),
                Ok(_) => match outcomes.next() {
                    Some(r) => r.map_err(|e| e.to_string()),
                    None => Err("not ingested".to_string()),
                },
            };
            results.push((
                path.display().to_string(),
                r.map_err(|e| format!("{}: {e}", path.display())),
            ));
        }
        pb.inc(group.len() as u64);
    }
    pb.finish_and_clear();
    let mut t = IngestTotals {
        sources: 0,
        new: 0,
        duplicates: 0,
        fixes: 0,
        rejected: Default::default(),
        failed: vec![],
    };
    for (path, r) in results {
        match r {
            Ok(o) => {
                t.sources += 1;
                if o.duplicate {
                    t.duplicates += 1;
                } else {
                    t.new += 1;
                    t.fixes += o.meta.fixes;
                    for (k, n) in &o.meta.rejected_by_reason {
                        *t.rejected.entry(k.clone()).or_default() += n;
                    }
                }
            }
            Err(e) => t.failed.push(format!("{path}: {e}")),
        }
    }
    Ok(t)
}

fn tree_jobs(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut jobs = Vec::new();
    let mut devs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| dir.display().to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    devs.sort();
    for d in devs {
        let device = d.file_name().unwrap().to_string_lossy().to_string();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        jobs.extend(files.into_iter().map(|f| (device.clone(), f)));
    }
    Ok(jobs)
}

fn fmt_n(n: u64) -> String {
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

fn reasons_line(m: &std::collections::BTreeMap<String, u64>) -> String {
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

fn print_summary(s: &Summary) {
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
    let ok = s.pool == s.allocated;
    match s.status.as_str() {
        "no_points" => println!("  pool {}: NO POINTS this epoch, nothing allocated", s.pool),
        _ => println!(
            "  pool {}   allocated {}   {}",
            s.pool,
            s.allocated,
            if ok {
                "Σ amounts = pool ✓"
            } else {
                "Σ amounts ≠ pool ✗"
            }
        ),
    }
    if !s.top.is_empty() {
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
}

fn open_existing(dir: &Path) -> Result<Lake> {
    if !dir.join("epochs").is_dir() {
        bail!("{} is not a tessera lake (no epochs/ directory)", dir.display());
    }
    Ok(Lake::open(dir)?)
}

fn print_explanation(x: &tessera::audit::Explanation) {
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
        println!(
            "  ranks: {}",
            d.ranks
                .iter()
                .map(|(k, v)| format!("#{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!("  rejected fixes: {}", reasons_line(&d.rejected));
        for e in &d.rejected_examples {
            println!("    {e}");
        }
    }
    if !x.top_visits.is_empty() {
        println!();
        println!("top visits:");
        for v in &x.top_visits {
            println!("  {v}");
        }
    }
}

fn load_registry(lake: &Lake, path: Option<&Path>) -> Result<Registry> {
    let p = path.map(Path::to_path_buf).unwrap_or_else(|| lake.path("registry.csv"));
    let bytes = std::fs::read(&p).with_context(|| {
        format!(
            "registry {}: cannot read (pass --registry FILE or put one at LAKE/registry.csv)",
            p.display()
        )
    })?;
    Ok(Registry::parse(&bytes, &p.display().to_string())?)
}

fn epoch_run(a: &RunArgs) -> Result<Summary> {
    let epoch: Epoch = a.epoch.parse()?;
    let pool = parse_pool(&a.pool)?;
    let lake = Lake::open(&a.lake)?
        .with_batch_rows(a.batch_rows)
        .with_max_visits(a.max_visits);
    let policy_text = match &a.policy {
        Some(p) => {
            Policy::load(p)?;
            std::fs::read_to_string(p)?
        }
        None => Policy::default().to_toml(),
    };
    let registry = load_registry(&lake, a.registry.as_deref())?;
    let inputs = EpochInputs {
        epoch,
        pool,
        policy_text,
        registry,
    };
    let pb = bar(0, "clean + cover", a.json);
    let progress = |stage: &str, done: u64, total: u64| {
        pb.set_message(stage.to_string());
        pb.set_length(total);
        pb.set_position(done);
    };
    let out = pipeline::run(&lake, &inputs, &progress)?;
    pb.finish_and_clear();
    Ok(out.summary)
}

fn demo(lake_dir: &Path, pool: &str, json: bool) -> Result<()> {
    let marker = lake_dir.join(".tessera-demo");
    if lake_dir.exists() {
        if !marker.exists() {
            bail!(
                "{} exists and is not a demo lake; pass --lake with a new directory",
                lake_dir.display()
            );
        }
        std::fs::remove_dir_all(lake_dir)?;
    }
    let lake = Lake::open(lake_dir)?;
    std::fs::write(&marker, b"created by tessera demo\n")?;
    let mut registry_csv = None;
    let mut jobs = Vec::new();
    for (rel, bytes) in sample::SAMPLE {
        match rel.split_once('/') {
            Some((device, name)) => jobs.push((device, name, *bytes)),
            None if *rel == "registry.csv" => registry_csv = Some(*bytes),
            None => {}
        }
    }
    let registry_csv = registry_csv.ok_or_else(|| anyhow!("sample has no registry.csv"))?;
    tessera::lake::write_atomic(&lake.path("registry.csv"), registry_csv)?;
    let registry = Registry::parse(registry_csv, "sample/registry.csv")?;
    let pb = bar(jobs.len() as u64, "ingest", json);
    let uploads: Vec<tessera::lake::Upload> = jobs
        .iter()
        .map(|(device, name, bytes)| tessera::lake::Upload { device, name, bytes })
        .collect();
    let outcomes: Vec<tessera::lake::IngestOutcome> = lake
        .ingest_batch(&uploads)
        .into_iter()
        .collect::<std::result::Result<_, _>>()?;
    pb.inc(jobs.len() as u64);
    pb.finish_and_clear();
    let fixes: u64 = outcomes.iter().map(|o| o.meta.fixes).sum();
    let lines: u64 = outcomes.iter().map(|o| o.meta.lines.total).sum();
    let rejected: u64 = outcomes.iter().map(|o| o.meta.rejected).sum();
    let mut by_reason = std::collections::BTreeMap::new();
    for o in &outcomes {
        for (k, n) in &o.meta.rejected_by_reason {
            *by_reason.entry(k.clone()).or_insert(0u64) += n;
        }
    }
    let mut epochs: Vec<Epoch> = outcomes
        .iter()
        .filter_map(|o| o.meta.min_time_ms.and_then(Epoch::containing))
        .collect();
    epochs.sort();
    epochs.dedup();
    let pool = parse_pool(pool)?;
    let mut summaries = Vec::new();
    let mut replay_ok = true;
    for e in &epochs {
        let inputs = EpochInputs::new(*e, pool, registry.clone());
        let out = pipeline::run(&lake, &inputs, &pipeline::no_progress)?;
        // Replay: recompute from the lake and compare every byte with what was written.
        let again = pipeline::compute(&lake, &inputs, &pipeline::no_progress)?;
        for (name, bytes) in &again.files {
            if std::fs::read(lake.epoch_dir(e).join(name))? != *bytes {
                replay_ok = false;
            }
        }
        summaries.push(out.summary);
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"lake": lake_dir, "sources": outcomes.len(), "lines": lines, "fixes": fixes, "lines_rejected": rejected, "epochs": summaries, "replay_identical": replay_ok})
            )?
        );
    } else {
        println!(
            "tessera demo: {} sample traces from {} devices → lake {}",
            outcomes.len(),
            jobs.iter()
                .map(|j| j.0)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            lake_dir.display()
        );
        println!(
            "ingest: {} lines → {} fixes; {} lines rejected: {}",
            fmt_n(lines),
            fmt_n(fixes),
            fmt_n(rejected),
            reasons_line(&by_reason)
        );
        for s in &summaries {
            println!();
            print_summary(s);
        }
        println!();
        println!(
            "replay: every epochs/*/ file recomputed from the lake is {}",
            if replay_ok {
                "byte-identical ✓"
            } else {
                "DIFFERENT ✗"
            }
        );
    }
    if !replay_ok
        || summaries
            .iter()
            .any(|s| s.status == "allocated" && s.pool != s.allocated)
    {
        bail!("demo self-check failed");
    }
    Ok(())
}

fn main() {
    if let Err(e) = tessera::cpu_supported() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    if let Err(e) = real_main() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Demo { lake, pool, json } => demo(&lake, &pool, json),
        Cmd::Policy => {
            print!("{}", Policy::default().to_toml());
            Ok(())
        }
        Cmd::Simulate(a) if a.fixes.is_some() => {
            use rayon::prelude::*;
            let n = parse_count(a.fixes.as_deref().unwrap_or_default())?;
            let mut cfg = tessera::simulate::ScaleConfig::for_fixes(n, a.seed);
            cfg.epoch = a.start.parse()?;
            let t0 = std::time::Instant::now();
            let pb = bar(u64::from(cfg.drivers), "simulate", false);
            if a.format == "nmea" {
                let bytes: u64 = (0..cfg.drivers)
                    .into_par_iter()
                    .map(|d| {
                        let log = cfg.driver_nmea(d);
                        let p = a.out.join(cfg.device(d)).join(format!("{}.nmea", cfg.epoch));
                        tessera::lake::write_atomic(&p, &log)?;
                        pb.inc(1);
                        Ok(log.len() as u64)
                    })
                    .sum::<Result<u64>>()?;
                pb.finish_and_clear();
                tessera::lake::write_atomic(&a.out.join("registry.csv"), cfg.registry_csv().as_bytes())?;
                let secs = t0.elapsed().as_secs_f64();
                println!(
                    "simulated {} fixes ({bytes} bytes of NMEA) for {} drivers in {} into {} in {secs:.1} s; registry: {}",
                    u64::from(cfg.drivers) * u64::from(cfg.seconds_per_driver),
                    cfg.drivers,
                    cfg.epoch,
                    a.out.display(),
                    a.out.join("registry.csv").display()
                );
                return Ok(());
            }
            let lake = tessera::lake::Lake::open(&a.out)?;
            // Drivers are generated and encoded in parallel, 256 per group commit.
            let mut totals: Vec<(u64, u64)> = Vec::with_capacity(cfg.drivers as usize);
            let all: Vec<u32> = (0..cfg.drivers).collect();
            for group in all.chunks(256) {
                let files: Vec<(String, String, Vec<u8>)> = group
                    .par_iter()
                    .map(|d| {
                        let device = cfg.device(*d);
                        let name = format!("{device}-{}.parquet", cfg.epoch);
                        let bytes = lake.fixes_source(&device, &name, &cfg.driver_fixes(*d))?;
                        Ok((device, name, bytes))
                    })
                    .collect::<Result<_>>()?;
                let uploads: Vec<tessera::lake::Upload> = files
                    .iter()
                    .map(|(device, name, bytes)| tessera::lake::Upload { device, name, bytes })
                    .collect();
                for out in lake.ingest_batch(&uploads) {
                    let out = out?;
                    totals.push((out.meta.fixes, out.meta.bytes));
                }
                pb.inc(group.len() as u64);
            }
            pb.finish_and_clear();
            tessera::lake::write_atomic(&a.out.join("registry.csv"), cfg.registry_csv().as_bytes())?;
            let (fixes, bytes) = totals.iter().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
            let secs = t0.elapsed().as_secs_f64();
            println!(
                "simulated {fixes} fixes ({bytes} bytes of Parquet) for {} drivers on a {}x{} street grid in {} into {} in {secs:.1} s ({:.2} M fixes/s); registry: {}",
                cfg.drivers,
                cfg.streets(),
                cfg.streets(),
                cfg.epoch,
                a.out.display(),
                fixes as f64 / secs / 1e6,
                a.out.join("registry.csv").display()
            );
            Ok(())
        }
        Cmd::Simulate(a) => {
            let cfg = tessera::simulate::SimConfig {
                seed: a.seed,
                drivers: a.drivers,
                start: a.start.parse()?,
                epochs: a.epochs,
                trips: a.trips,
                minutes: a.minutes,
                ..Default::default()
            };
            let fleet = tessera::simulate::simulate(&cfg);
            let mut bytes = 0;
            for f in &fleet.files {
                let p = a.out.join(&f.device).join(&f.name);
                tessera::lake::write_atomic(&p, &f.bytes)?;
                bytes += f.bytes.len();
            }
            tessera::lake::write_atomic(&a.out.join("registry.csv"), fleet.registry_csv.as_bytes())?;
            let roles: String = fleet.roles.iter().map(|(d, r)| format!("{d},{r}\n")).collect();
            tessera::lake::write_atomic(&a.out.join("roles.csv"), format!("device_id,role\n{roles}").as_bytes())?;
            println!(
                "simulated {} files ({} bytes) for {} drivers into {}",
                fleet.files.len(),
                bytes,
                fleet.roles.len(),
                a.out.display()
            );
            Ok(())
        }
        Cmd::Ingest {
            lake,
            device,
            tree,
            files,
            json,
            batch_rows,
        } => {
            let lake = Lake::open(&lake)?.with_batch_rows(batch_rows);
            let jobs = match (tree, device) {
                (Some(t), _) => tree_jobs(&t)?,
                (None, Some(d)) => files.into_iter().map(|f| (d.clone(), f)).collect(),
                (None, None) => bail!("pass --device ID FILES... or --tree DIR"),
            };
            let t = ingest_jobs(&lake, jobs, json)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"sources": t.sources, "new": t.new, "duplicates": t.duplicates, "fixes": t.fixes, "rejected": t.rejected, "failed": t.failed})
                    )?
                );
            } else {
                println!(
                    "ingested {} sources ({} new, {} duplicates): {} fixes; rejected lines: {}",
                    t.sources,
                    t.new,
                    t.duplicates,
                    fmt_n(t.fixes),
                    reasons_line(&t.rejected)
                );
                for f in &t.failed {
                    eprintln!("failed: {f}");
                }
            }
            if !t.failed.is_empty() {
                bail!("{} file(s) could not be ingested", t.failed.len());
            }
            Ok(())
        }
        #[cfg(feature = "sql")]
        Cmd::Sql {
            lake,
            query,
            format,
            output,
        } => sql::sql(&lake, query, format, output),
        #[cfg(feature = "sql")]
        Cmd::Tables { lake } => sql::tables(&lake),
        Cmd::Export {
            what: ExportCmd::Cells { lake, epoch, output },
        } => {
            let lake = open_existing(&lake)?;
            let e: Epoch = epoch.parse()?;
            let bytes = tessera::geoparquet::export_cells(&lake, &e)?;
            tessera::lake::write_atomic(&output, &bytes)?;
            println!(
                "wrote {} ({} bytes) with the cells of {e}",
                output.display(),
                bytes.len()
            );
            Ok(())
        }
        Cmd::Render {
            lake,
            epoch,
            output,
            color,
            width,
            height,
            res,
        } => {
            let lake = open_existing(&lake)?;
            let e: Epoch = epoch.parse()?;
            let color_by: tessera::render::ColorBy = color.parse().map_err(|x: String| anyhow!("--color: {x}"))?;
            let resolution = match res {
                None => None,
                Some(r) => Some(h3o::Resolution::try_from(r).map_err(|_| anyhow!("--res {r}: expected 0..=15"))?),
            };
            let cells = tessera::geoparquet::epoch_cells(&lake, &e)?;
            let opts = tessera::render::Options {
                color_by,
                width,
                map_height: height,
                resolution,
            };
            let map = tessera::render::render(&e, &cells, &opts)?;
            tessera::lake::write_atomic(&output, &map.png)?;
            println!(
                "wrote {} ({}x{} px): {} cells of {e} drawn as {} at H3 res {}; scale bar {}",
                output.display(),
                map.width,
                map.height,
                map.cells,
                map.drawn,
                u8::from(map.drawn_resolution),
                map.scale
            );
            for l in &map.legend {
                println!("  {:<28} {:>8} cells", l.label, l.count);
            }
            Ok(())
        }
        Cmd::Capture {
            port,
            baud,
            out,
            rotate_secs,
            rotate_bytes,
            json,
        } => {
            let baud = match baud.as_str() {
                "auto" => None,
                b => Some(
                    b.parse::<u32>()
                        .map_err(|_| anyhow!("--baud {b:?}: a rate like 9600, or auto"))?,
                ),
            };
            let mut cfg = tessera_net::capture::CaptureConfig::new(&port, baud, &out);
            cfg.rotate_after = std::time::Duration::from_secs(rotate_secs.max(1));
            cfg.rotate_bytes = rotate_bytes.max(1024);
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let s2 = stop.clone();
            ctrlc::set_handler(move || s2.store(true, std::sync::atomic::Ordering::Relaxed))?;
            let quiet = json;
            let stats = tessera_net::capture::capture(&cfg, &stop, &mut |s| {
                if !quiet {
                    eprint!("\r{:<100}", s.line());
                }
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                eprintln!();
                println!(
                    "captured {} lines ({} valid) into {} file(s) in {}",
                    stats.lines,
                    stats.valid,
                    stats.files.len(),
                    out.display()
                );
            }
            Ok(())
        }
        Cmd::Serve {
            lake,
            registry,
            listen,
            max_body,
            max_skew_secs,
        } => {
            let lake = Lake::open(&lake)?;
            let bytes = std::fs::read(&registry).with_context(|| registry.display().to_string())?;
            let registry = Registry::parse(&bytes, &registry.display().to_string())?;
            let limits = tessera_net::server::Limits {
                max_body,
                max_skew_ms: max_skew_secs * 1000,
            };
            let state = tessera_net::server::AppState::new(lake, registry, limits);
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(&listen)
                    .await
                    .with_context(|| format!("listen on {listen}"))?;
                println!("tessera serve: listening on http://{}", listener.local_addr()?);
                let shutdown = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                tessera_net::server::serve(listener, state, shutdown).await?;
                anyhow::Ok(())
            })
        }
        Cmd::Upload {
            server,
            device,
            key,
            attempts,
            files,
            json,
        } => {
            let key = tessera_net::signing::DeviceKey::load(&key)?;
            let mut client = tessera_net::client::Client::new(&server, &device, key);
            client.attempts = attempts.max(1);
            let results: Vec<_> = files.iter().map(|f| client.upload_file(f)).collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&results)?);
            } else {
                for r in &results {
                    let what = match r.status {
                        201 => "stored".to_string(),
                        200 => "duplicate (already stored)".to_string(),
                        0 => format!("no answer: {}", r.response),
                        s => format!("refused {s}: {}", r.response),
                    };
                    println!("{}: {what}", r.file);
                }
            }
            let failed = results.iter().filter(|r| !r.ok).count();
            if failed > 0 {
                bail!("{failed} of {} upload(s) failed", results.len());
            }
            Ok(())
        }
        Cmd::Keygen { out } => {
            let k = tessera_net::signing::DeviceKey::generate()?;
            k.save(&out)?;
            println!("{}", k.public_hex());
            eprintln!(
                "secret key written to {} (mode 0600); add the public key above as the registry's pubkey column",
                out.display()
            );
            Ok(())
        }
        Cmd::Proof {
            lake,
            epoch,
            recipient,
            all,
        } => {
            let lake = open_existing(&lake)?;
            let doc = tessera::audit::proof(&lake, &epoch.parse()?, if all { None } else { recipient.as_deref() })?;
            if all {
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                let c = &doc.claims[0];
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"epoch": doc.epoch, "scheme": doc.scheme, "root": doc.root, "recipient": c.recipient, "amount": c.amount, "leaf": c.leaf, "proof": c.proof})
                    )?
                );
            }
            Ok(())
        }
        Cmd::Explain {
            lake,
            epoch,
            recipient,
            json,
        } => {
            let lake = open_existing(&lake)?;
            let x = tessera::audit::explain(&lake, &epoch.parse()?, &recipient)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&x)?);
            } else {
                print_explanation(&x);
            }
            Ok(())
        }
        Cmd::Epoch {
            cmd:
                EpochCmd::Verify {
                    lake,
                    epoch,
                    manifest,
                    json,
                },
        } => {
            let lake = open_existing(&lake)?;
            let pb = bar(0, "recompute", json);
            let progress = |stage: &str, done: u64, total: u64| {
                pb.set_message(stage.to_string());
                pb.set_length(total);
                pb.set_position(done);
            };
            let r = tessera::audit::verify(&lake, &epoch.parse()?, manifest.as_deref(), &progress)?;
            pb.finish_and_clear();
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else if r.ok {
                println!(
                    "epoch {}: all {} files recomputed from the lake match byte for byte ✓",
                    r.epoch,
                    r.checked.len()
                );
            } else {
                println!("epoch {}: MISMATCH in {} file(s)", r.epoch, r.mismatches.len());
                for m in &r.mismatches {
                    println!("  {}: {}", m.file, m.problem);
                    for row in &m.published_only {
                        println!("    published : {row}");
                    }
                    for row in &m.recomputed_only {
                        println!("    recomputed: {row}");
                    }
                }
            }
            if !r.ok {
                std::process::exit(2);
            }
            Ok(())
        }
        Cmd::Epoch {
            cmd:
                EpochCmd::Diff {
                    lake,
                    epoch,
                    policy,
                    json,
                },
        } => {
            let lake = open_existing(&lake)?;
            Policy::load(&policy)?;
            let text = std::fs::read_to_string(&policy)?;
            let lines = tessera::audit::diff(&lake, &epoch.parse()?, &text, &pipeline::no_progress)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&lines)?);
            } else {
                println!("epoch {epoch} under {} (nothing written):", policy.display());
                println!(
                    "  {:<44} {:>16} {:>16} {:>17}",
                    "recipient", "published", "what-if", "change"
                );
                for l in &lines {
                    println!("  {:<44} {:>16} {:>16} {:>17}", l.recipient, l.before, l.after, l.delta);
                }
            }
            Ok(())
        }
        Cmd::Epoch { cmd: EpochCmd::Run(a) } => {
            let s = epoch_run(&a)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print_summary(&s);
            }
            Ok(())
        }
    }
}
