//! Every clap definition of the `tessera` command line, and the typed parsers of its values.
//! The commands themselves are in `commands/`, one file each.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use tessera::epoch::Epoch;

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Exact, replayable rewards for decentralized mapping networks"
)]
pub struct Cli {
    /// Print machine-readable JSON instead of text (amounts and points as decimal strings).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// The lake a command reads (it must exist).
#[derive(Args, Clone)]
pub struct LakeArg {
    /// Lake directory.
    #[arg(long)]
    pub lake: PathBuf,
}

/// A lake and one of its epochs.
#[derive(Args, Clone)]
pub struct EpochArg {
    #[command(flatten)]
    pub lake: LakeArg,
    /// ISO week, e.g. 2026-W47.
    #[arg(long, value_parser = parse_epoch)]
    pub epoch: Epoch,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Run the whole pipeline on the embedded sample fleet and print a summary.
    Demo {
        /// Lake directory to create (replaced if it is an earlier demo lake).
        #[arg(long, default_value = "demo-lake")]
        lake: PathBuf,
        /// Pool per epoch, in base units.
        #[arg(long, default_value = "1000000000000", value_parser = parse_pool)]
        pool: u128,
    },
    /// Generate a deterministic synthetic fleet (NMEA/BlackVue/GnssLogger/GPX + registry).
    Simulate(SimArgs),
    /// Ingest trace files into a lake (idempotent: the same bytes twice is a no-op). Creates the
    /// lake if it does not exist.
    Ingest(IngestArgs),
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
        #[command(flatten)]
        at: EpochArg,
        /// Wallet address (a device id is answered with the wallet it pays).
        #[arg(required_unless_present = "all")]
        recipient: Option<String>,
        /// Every recipient's claim.
        #[arg(long, conflicts_with = "recipient")]
        all: bool,
    },
    /// Capture NMEA from a GNSS receiver on a serial port into rotating files (Ctrl-C to stop).
    Capture(CaptureArgs),
    /// Serve the signed-upload endpoint (POST /v1/uploads, GET /health, GET /metrics).
    Serve(ServeArgs),
    /// Sign and upload trace files to a tessera server (retries transient failures).
    Upload(UploadArgs),
    /// Make a device key pair: writes the secret key file, prints the public key for the registry.
    Keygen {
        /// Key file to create (refuses to overwrite; mode 0600).
        #[arg(long)]
        out: PathBuf,
    },
    /// Run SQL over the lake (DataFusion, H3 functions); no query opens an interactive prompt.
    Sql {
        #[command(flatten)]
        lake: LakeArg,
        /// The query.
        query: Option<String>,
        /// Output format (`--json` is the same as `--format json`).
        #[arg(long, value_enum, default_value = "table")]
        format: SqlFormat,
        /// Write the result to a file (atomically) instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// List the lake's SQL tables and their columns.
    Tables {
        #[command(flatten)]
        lake: LakeArg,
    },
    /// Build the places of a policy (regions, road cells, bounty areas) and report them, without
    /// running an epoch.
    Places {
        /// Policy TOML naming `[[regions]]`, `[roads]`, `[[bounties]]` (paths relative to it).
        #[arg(long)]
        policy: PathBuf,
        /// Also write the cells as `places.parquet` (the file an epoch stores).
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Export lake data for GIS tools.
    Export {
        #[command(subcommand)]
        what: ExportCmd,
    },
    /// Draw an epoch's cells as a PNG map coloured by freshness or points, with legend and scale.
    Render(RenderArgs),
    /// Explain a recipient's amount: devices, source files, cells, ranks, multipliers, and
    /// rejected fixes.
    Explain {
        #[command(flatten)]
        at: EpochArg,
        /// Wallet address.
        recipient: String,
    },
}

/// Output format of `tessera sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SqlFormat {
    /// An aligned text table.
    Table,
    /// CSV with a header.
    Csv,
    /// A JSON array of objects (decimals as strings).
    Json,
    /// Parquet (needs --output).
    Parquet,
}

#[derive(Subcommand)]
pub enum ExportCmd {
    /// An epoch's cells (coverage state with the epoch's visits and points): one polygon per
    /// cell (two parts across the antimeridian).
    Cells(ExportArgs),
    /// An epoch's tracks: line strings of consecutive fixes per source with device, file,
    /// accepted/rejected status, reason and segment.
    Tracks(ExportArgs),
    /// An epoch's regions with their statistics: each region's cells dissolved into one outline.
    Regions(ExportArgs),
    /// An epoch's coverage as a raster (GeoTIFF, or Cloud-Optimized GeoTIFF with --cog): pixels
    /// count the epochs that covered the cell under their centre.
    Coverage {
        #[command(flatten)]
        at: EpochArg,
        /// Output file (.tif).
        #[arg(long)]
        output: PathBuf,
        /// Pixel size in degrees.
        #[arg(long, default_value_t = 0.0001)]
        pixel_deg: f64,
        /// Write a Cloud-Optimized GeoTIFF.
        #[arg(long)]
        cog: bool,
    },
}

/// Where and how to export a layer.
#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub at: EpochArg,
    /// Output file.
    #[arg(long)]
    pub output: PathBuf,
    /// Format (default: from the output's extension). Everything but parquet (GeoParquet 1.1)
    /// is written through GDAL.
    #[arg(long, value_enum)]
    pub format: Option<crate::gis::ExportFormat>,
}

#[derive(Subcommand)]
pub enum EpochCmd {
    /// Compute an epoch's rewards and write epochs/E/ atomically. A published epoch is
    /// immutable: running it again is a no-op when the bytes are the same and refused when they
    /// would differ (unless --replace).
    Run(RunArgs),
    /// Recompute an epoch from the lake and compare with the published files: exit 0 only on an
    /// exact match, otherwise print which file and which rows differ (exit 2).
    Verify {
        #[command(flatten)]
        at: EpochArg,
        /// Check against this manifest instead of LAKE/epochs/E/manifest.json.
        #[arg(long)]
        manifest: Option<PathBuf>,
    },
    /// Trust review: the devices the trust detectors flagged, ranked by what they would have
    /// earned with the detectors off, with the evidence and the source files.
    Review {
        #[command(flatten)]
        at: EpochArg,
        /// Show at most this many devices.
        #[arg(long, default_value_t = 20)]
        top: usize,
    },
    /// What-if: recompute an epoch under another policy without writing, and show the change per
    /// recipient.
    Diff {
        #[command(flatten)]
        at: EpochArg,
        /// The other policy.
        #[arg(long)]
        policy: PathBuf,
    },
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub at: EpochArg,
    /// Pool in integer base units (at most 10^38 - 1, the range of Decimal128(38,0)); default:
    /// the policy's `[emission]` schedule (with one, a --pool that differs is refused).
    #[arg(long, value_parser = parse_pool, allow_negative_numbers = true)]
    pub pool: Option<u128>,
    /// Policy TOML (default: a published epoch's own `policy.toml`, else policy v1; `tessera
    /// policy > policy.toml` writes v1 to edit).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Device registry CSV (default: LAKE/registry.csv).
    #[arg(long)]
    pub registry: Option<PathBuf>,
    /// Overwrite a published epoch whose recomputed bytes differ.
    #[arg(long)]
    pub replace: bool,
    /// Run although an earlier epoch has sources in the lake but was never run.
    #[arg(long)]
    pub no_prior: bool,
    /// Rows per record batch when reading fixes (memory knob; the outputs do not depend on it).
    #[arg(long, default_value_t = 65_536)]
    pub batch_rows: usize,
    /// Visits held in memory before they spill to disk in the staging directory (memory knob:
    /// ~60 bytes each; the outputs do not depend on it).
    #[arg(long, default_value_t = tessera::lake::DEFAULT_MAX_VISITS)]
    pub max_visits: usize,
}

#[derive(Args)]
pub struct IngestArgs {
    /// Lake directory (created if missing).
    #[arg(long)]
    pub lake: PathBuf,
    /// Device id the FILES belong to.
    #[arg(long, required_unless_present = "tree", requires = "files")]
    pub device: Option<String>,
    /// Ingest a directory tree laid out as DIR/<device-id>/<files> (many devices at once).
    #[arg(long, conflicts_with = "device")]
    pub tree: Option<PathBuf>,
    /// Trace files (.nmea, .log, .gps, .txt, .gpx, .parquet, camera .mp4 with GoPro GPMF, CAMM
    /// or BlackVue telemetry, raw GPMF ...).
    pub files: Vec<PathBuf>,
    /// Rows per record batch when writing fixes (memory knob; outputs of epochs do not depend
    /// on it).
    #[arg(long, default_value_t = 65_536)]
    pub batch_rows: usize,
    /// When the network received these files (RFC 3339, e.g. 2026-11-18T10:15:00Z); default
    /// now. Fix times are checked against it (policy `[receipt]`).
    #[arg(long, value_parser = parse_time)]
    pub received_at: Option<i64>,
    /// Policy whose `[receipt]` section bounds fix times against the receipt (default: the
    /// default policy).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// First remove what killed writers left in the lake — temp files, and data files without
    /// their source's metadata — unchanged for at least SECONDS (3600: an hour); listed in the
    /// output. Use it while no other ingest or upload server is committing to the lake.
    #[arg(long, value_name = "SECONDS")]
    pub remove_leftovers: Option<u64>,
}

/// What `simulate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SimFormat {
    /// With --fixes (the default there): Parquet sources straight into the lake at --out.
    Parquet,
    /// With --fixes: one NMEA log per driver as --out/<device>/<epoch>.nmea, for `tessera ingest --tree`.
    Nmea,
    /// Small fleet: every trip as a CAMM MP4 (GNSS + 10 Hz accelerometer and gyroscope).
    Camm,
    /// Small fleet: every trip as a BlackVue MP4 (`gps ` NMEA + `3gf ` accelerometer).
    BlackvueMp4,
}

#[derive(Args)]
pub struct SimArgs {
    /// Output directory (DIR/<device>/<files> and DIR/registry.csv).
    #[arg(long)]
    pub out: PathBuf,
    /// Random seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Drivers.
    #[arg(long, default_value_t = 10)]
    pub drivers: u32,
    /// First epoch.
    #[arg(long, default_value = "2026-W46", value_parser = parse_epoch)]
    pub start: Epoch,
    /// Epochs.
    #[arg(long, default_value_t = 2)]
    pub epochs: u32,
    /// Trips per driver per epoch.
    #[arg(long, default_value_t = 2)]
    pub trips: u32,
    /// Minutes per trip (1 Hz).
    #[arg(long, default_value_t = 10)]
    pub minutes: u32,
    /// Scale mode: about this many fixes (e.g. 1e8) in epoch --start, 14 h of driving per
    /// driver, written straight into the lake at --out as Parquet sources (in parallel,
    /// deterministic), with the registry at --out/registry.csv.
    #[arg(long, value_parser = parse_count)]
    pub fixes: Option<u64>,
    /// With --fixes: where the fixes go (parquet, the default, or nmea). Without: every trip
    /// as a camera file (camm or blackvue-mp4) instead of the demo's mix of loggers.
    #[arg(long, value_enum)]
    pub format: Option<SimFormat>,
    /// A labelled adversarial fleet instead (every attack of the trust layer, with honest
    /// controls), ingested into the lake at --out with receipt times, in epoch --start, with
    /// --out/registry.csv and --out/labels.csv.
    #[arg(long, conflicts_with = "fixes")]
    pub attacks: bool,
    /// Drive the fleet on the roads of an OpenStreetMap .osm.pbf extract (default classes:
    /// tessera::places::policy::default_highways) instead of the street grid.
    #[arg(long)]
    pub roads: Option<PathBuf>,
}

#[derive(Args)]
pub struct CaptureArgs {
    /// Serial device, e.g. /dev/ttyUSB0.
    #[arg(long)]
    pub port: String,
    /// Baud rate, or `auto` to try the usual rates until valid sentences appear.
    #[arg(long, default_value = "9600", value_parser = parse_baud)]
    pub baud: Baud,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Start a new file after this many seconds.
    #[arg(long, default_value_t = 3600)]
    pub rotate_secs: u64,
    /// Start a new file at this many bytes.
    #[arg(long, default_value_t = 64 << 20)]
    pub rotate_bytes: u64,
}

/// A serial rate, or detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baud {
    /// Try the usual rates.
    Auto,
    /// This rate.
    Rate(u32),
}

#[derive(Args)]
pub struct ServeArgs {
    /// Lake directory (must exist unless --init).
    #[arg(long)]
    pub lake: PathBuf,
    /// Create the lake if it does not exist.
    #[arg(long)]
    pub init: bool,
    /// Registry with device public keys (device_id,wallet,pubkey).
    #[arg(long)]
    pub registry: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Largest accepted upload, bytes.
    #[arg(long, default_value_t = 16 << 20)]
    pub max_body: usize,
    /// Largest accepted camera video (sent as Content-Type video/… or named *.mp4/*.mov), bytes;
    /// videos stream to disk and are ingested by seeking to their telemetry.
    #[arg(long, default_value_t = 4 << 30)]
    pub max_video_body: usize,
    /// Largest accepted clock difference between device and server, seconds.
    #[arg(long, default_value_t = 300)]
    pub max_skew_secs: i64,
    /// MiB of upload bodies received or ingested at once; past it uploads get 503 + Retry-After.
    #[arg(long, default_value_t = 256)]
    pub max_in_flight_mib: usize,
    /// Seconds a connection may take to send its headers, or to send the next chunk of a body
    /// (past that, also at least 1 KiB/s); slower connections are closed.
    #[arg(long, default_value_t = 10)]
    pub timeout_secs: u64,
}

#[derive(Args)]
pub struct UploadArgs {
    /// Server URL, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub server: String,
    /// Device id.
    #[arg(long)]
    pub device: String,
    /// Key file from `tessera keygen`.
    #[arg(long)]
    pub key: PathBuf,
    /// Attempts per file.
    #[arg(long, default_value_t = 5)]
    pub attempts: u32,
    /// Files to upload.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// What the colours of `render` show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// Epochs since each cell was last covered.
    Freshness,
    /// Points earned in the epoch, quantile classes.
    Points,
}

#[derive(Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub at: EpochArg,
    /// Output PNG file.
    #[arg(long)]
    pub output: PathBuf,
    /// What the colours show.
    #[arg(long, value_enum, default_value = "freshness")]
    pub color: Color,
    /// Image width in pixels (800..=8000).
    #[arg(long, default_value_t = 1200)]
    pub width: u32,
    /// Map height in pixels (default: from the data's aspect ratio).
    #[arg(long)]
    pub height: Option<u32>,
    /// Draw at this H3 resolution, merging finer cells (default: the finest at which a cell
    /// edge is at least 2 pixels).
    #[arg(long, value_parser = parse_resolution)]
    pub res: Option<h3o::Resolution>,
}

/// An RFC 3339 time (`2026-11-18T10:15:00Z`, or with an offset) → UTC ms.
pub fn parse_time(s: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("{s:?} is not an RFC 3339 time such as 2026-11-18T10:15:00Z ({e})"))
}

/// An ISO week such as `2026-W47`.
pub fn parse_epoch(s: &str) -> Result<Epoch, String> {
    s.parse().map_err(|e| format!("{e}"))
}

/// A pool: a non-negative integer number of base units below 10^38 (`_` separators allowed).
pub fn parse_pool(s: &str) -> Result<u128, String> {
    let clean: String = s.chars().filter(|c| *c != '_').collect();
    let v: u128 = clean
        .parse()
        .map_err(|_| format!("{s:?} is not a non-negative integer number of base units"))?;
    if v > 99_999_999_999_999_999_999_999_999_999_999_999_999 {
        return Err(format!(
            "{s} exceeds 10^38 - 1, the largest amount Decimal128(38,0) can store"
        ));
    }
    Ok(v)
}

/// A count: `1000000`, `1_000_000` or `1e6`.
pub fn parse_count(s: &str) -> Result<u64, String> {
    let clean: String = s.chars().filter(|c| *c != '_').collect();
    if let Ok(v) = clean.parse::<u64>() {
        return Ok(v);
    }
    let bad = || format!("{s:?} is not a count (1000000, 1_000_000 or 1e6)");
    let (m, e) = clean.split_once(['e', 'E']).ok_or_else(bad)?;
    let (m, e): (u64, u32) = (m.parse().map_err(|_| bad())?, e.parse().map_err(|_| bad())?);
    10u64
        .checked_pow(e)
        .and_then(|p| p.checked_mul(m))
        .ok_or_else(|| format!("{s:?} is too large"))
}

fn parse_baud(s: &str) -> Result<Baud, String> {
    match s {
        "auto" => Ok(Baud::Auto),
        b => b
            .parse()
            .map(Baud::Rate)
            .map_err(|_| format!("{b:?}: a rate like 9600, or auto")),
    }
}

fn parse_resolution(s: &str) -> Result<h3o::Resolution, String> {
    s.parse::<u8>()
        .ok()
        .and_then(|r| h3o::Resolution::try_from(r).ok())
        .ok_or_else(|| format!("{s:?}: an H3 resolution 0..=15"))
}
