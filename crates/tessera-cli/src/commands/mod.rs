//! One file per command; [`run`] dispatches. Shared helpers: opening an existing lake and
//! loading a registry.

use crate::cli::{Cli, Cmd, EpochCmd, ExportCmd, LakeArg};
use anyhow::{Context, Result};
use std::path::Path;
use tessera::lake::Lake;
use tessera::registry::Registry;

mod capture;
mod demo;
mod epoch_diff;
mod epoch_review;
mod epoch_run;
mod epoch_verify;
mod explain;
mod export;
mod ingest;
mod keygen;
mod places;
mod policy;
mod proof;
mod render;
mod serve;
mod simulate;
mod sql;
mod tables;
mod upload;

/// Run the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let json = cli.json;
    match cli.cmd {
        Cmd::Demo { lake, pool } => demo::run(&lake, pool, json),
        Cmd::Simulate(a) => simulate::run(&a, json),
        Cmd::Ingest(a) => ingest::run(&a, json),
        Cmd::Epoch { cmd: EpochCmd::Run(a) } => epoch_run::run(&a, json),
        Cmd::Epoch {
            cmd: EpochCmd::Verify { at, manifest },
        } => epoch_verify::run(&at, manifest.as_deref(), json),
        Cmd::Epoch {
            cmd: EpochCmd::Review { at, top },
        } => epoch_review::run(&at, top, json),
        Cmd::Epoch {
            cmd: EpochCmd::Diff { at, policy },
        } => epoch_diff::run(&at, &policy, json),
        Cmd::Policy => policy::run(json),
        Cmd::Proof { at, recipient, all } => proof::run(&at, recipient.as_deref(), all),
        Cmd::Capture(a) => capture::run(&a, json),
        Cmd::Serve(a) => serve::run(&a),
        Cmd::Upload(a) => upload::run(&a, json),
        Cmd::Keygen { out } => keygen::run(&out, json),
        Cmd::Sql {
            lake,
            query,
            format,
            output,
        } => sql::run(&lake, query, format, output.as_deref(), json),
        Cmd::Tables { lake } => tables::run(&lake, json),
        Cmd::Export { what } => match what {
            ExportCmd::Cells(a) => export::layer(&a, export::Which::Cells, json),
            ExportCmd::Tracks(a) => export::layer(&a, export::Which::Tracks, json),
            ExportCmd::Regions(a) => export::layer(&a, export::Which::Regions, json),
            ExportCmd::Coverage {
                at,
                output,
                pixel_deg,
                cog,
            } => export::coverage(&at, &output, pixel_deg, cog, json),
        },
        Cmd::Places { policy, output } => places::run(&policy, output.as_deref(), json),
        Cmd::Render(a) => render::run(&a, json),
        Cmd::Explain { at, recipient } => explain::run(&at, &recipient, json),
    }
}

/// Open a lake that must already exist (a typo must not create an empty lake and report on it).
pub fn open_lake(arg: &LakeArg) -> Result<Lake> {
    Ok(Lake::open_existing(&arg.lake)?)
}

/// The registry at `path`, or the lake's `registry.csv`.
pub fn load_registry(lake: &Lake, path: Option<&Path>) -> Result<Registry> {
    let p = path.map(Path::to_path_buf).unwrap_or_else(|| lake.path("registry.csv"));
    let bytes = std::fs::read(&p).with_context(|| {
        format!(
            "registry {}: cannot read (pass --registry FILE or put one at LAKE/registry.csv)",
            p.display()
        )
    })?;
    Ok(Registry::parse(&bytes, &p.display().to_string())?)
}

/// A policy file's text, the policy and its places (regions, road cells, bounty areas, read
/// from the sources it names, relative to the file); the default policy without a file.
pub fn load_policy(path: Option<&Path>) -> Result<(String, tessera::policy::Policy, tessera::places::Places)> {
    let (text, policy, places, _) = load_policy_cached(path, None)?;
    Ok((text, policy, places))
}

/// A policy's text, the policy, its places and — when they came through the cache — their
/// `places.parquet` bytes (what `EpochInputs::places_parquet` takes).
pub type CachedPolicy = (
    String,
    tessera::policy::Policy,
    tessera::places::Places,
    Option<tessera::bytes::Bytes>,
);

/// [`load_policy`] with the places taken from (or built into) the cache directory `cache`
/// (`tessera::places::cache`, keyed by this executable's hash, GDAL's version, the policy's
/// place sections and the source files' bytes). Says on stderr where the places came from.
pub fn load_policy_cached(path: Option<&Path>, cache: Option<&Path>) -> Result<CachedPolicy> {
    let Some(p) = path else {
        let policy = tessera::policy::Policy::default();
        return Ok((policy.to_toml(), policy, tessera::places::Places::default(), None));
    };
    let policy = tessera::policy::Policy::load(p)?;
    let text = std::fs::read_to_string(p).with_context(|| format!("policy {}", p.display()))?;
    let base = p
        .parent()
        .filter(|b| !b.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let context = || format!("places of policy {}", p.display());
    let names_places = !policy.regions.is_empty() || policy.roads.is_some() || !policy.bounties.is_empty();
    // The executable's hash (remembered in the cache under its file identity) only when there
    // are places to cache.
    let build_id = cache
        .filter(|_| names_places)
        .and_then(|d| tessera::places::cache::executable_id_in(d).ok());
    let (places, encoded) = match (cache, build_id) {
        (Some(dir), Some(id)) => {
            use tessera::places::cache::{load_or_build, Origin};
            let (places, origin, encoded) =
                load_or_build(&policy, base, crate::gis::reader(), dir, &id).with_context(context)?;
            match origin {
                Origin::None => {}
                Origin::Cached(f) => eprintln!("places: from the cache, {}", f.display()),
                Origin::Built { path, replaced } => eprintln!(
                    "places: built and cached{}, {}",
                    if replaced {
                        " (replacing an unreadable cache file)"
                    } else {
                        ""
                    },
                    path.display()
                ),
            }
            (places, encoded)
        }
        _ => (
            tessera::places::build(&policy, base, crate::gis::reader()).with_context(context)?,
            None,
        ),
    };
    Ok((text, policy, places, encoded))
}
