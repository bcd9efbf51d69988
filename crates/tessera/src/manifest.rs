//! The epoch manifest (`epochs/E/manifest.json`): the one definition of its fields, written by
//! the epoch run and read by `verify`, `proof`, `explain`, SQL and Python.
//!
//! Format `tessera-epoch-manifest/1`. Fields are declared in alphabetical order because that is
//! the order published manifests have (they were first written from a sorted JSON map), so a
//! manifest read and written again keeps its bytes. Money and points are decimal strings, never
//! JSON numbers.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The format tag of this manifest version.
pub const FORMAT: &str = "tessera-epoch-manifest/1";

/// Whether the pool was allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Σ amounts = pool.
    Allocated,
    /// Nobody earned points: nothing allocated, the pool stays unspent.
    NoPoints,
}

impl Status {
    /// The stable name (`allocated`, `no_points`).
    ///
    /// ```
    /// assert_eq!(tessera::manifest::Status::NoPoints.as_str(), "no_points");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Allocated => "allocated",
            Status::NoPoints => "no_points",
        }
    }
}

/// The epoch's time window, RFC 3339 UTC, end exclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// End (exclusive).
    pub end: String,
    /// Start.
    pub start: String,
}

/// The merkle distribution's scheme and root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merkle {
    /// Root, `0x`-prefixed hex (`null` when nothing was allocated).
    pub root: Option<String>,
    /// Scheme name (`evm-standard-v1`, `solana-sha256-v1`).
    pub scheme: String,
}

/// What went in and out of the epoch, counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Distinct cells covered.
    pub cells: u64,
    /// Fixes accepted by every gate.
    pub fixes_accepted: u64,
    /// Fixes inside the window.
    pub fixes_in: u64,
    /// Cells never covered before this epoch.
    pub new_cells: u64,
    /// Rejected fixes by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Sources whose fixes overlap the window.
    pub sources: u64,
    /// Visits scored.
    pub visits: u64,
}

/// One source read by the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// Device that sent it.
    pub device: String,
    /// SHA-256 of its fixes Parquet file.
    pub fixes_sha256: String,
    /// The file name it was ingested from.
    pub name: String,
    /// BLAKE3 of the raw bytes (the source's id in the lake).
    pub source: String,
}

/// The epoch whose coverage state this one started from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousState {
    /// SHA-256 of that epoch's `coverage.parquet`.
    pub coverage_sha256: String,
    /// Its ISO week.
    pub epoch: String,
}

/// The program that wrote the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Software {
    /// `tessera`.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// The per-wallet cap's effect (`[rewards] max_wallet_share` below 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cap {
    /// The cap, base units (decimal string).
    pub amount: String,
    /// Recipients held at the cap.
    pub capped: u64,
    /// The share (decimal).
    pub max_wallet_share: String,
    /// Left unallocated because every recipient reached the cap (decimal string).
    pub unallocated: String,
}

/// A place source read for the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceInput {
    /// Path as written in the policy.
    pub path: String,
    /// `region`, `roads` or `bounty:<id>`.
    pub role: String,
    /// SHA-256 of its bytes.
    pub sha256: String,
}

/// The places an epoch was scored with (`places.parquet` holds their cells).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacesRecord {
    /// Road length in cells covered this epoch, km (decimal, 3 places).
    pub road_km_covered: String,
    /// Road length in cells covered for the first time, km.
    pub road_km_fresh: String,
    /// Road length of the whole network, km (`0.000` with no network).
    pub road_km_network: String,
    /// The source files, with their SHA-256 (`epoch verify` recomputes from the stored
    /// `places.parquet` and keeps these).
    pub sources: Vec<PlaceInput>,
}

/// `epochs/E/manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Σ amounts of the epoch pool, base units (decimal string); bounties are in `bounties`.
    pub allocated: String,
    /// Bounties paying this epoch, by id order in the policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bounties: Vec<crate::rewards::bounty::Settlement>,
    /// The per-wallet cap, when one is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<Cap>,
    /// Counts.
    pub counts: Counts,
    /// ISO week.
    pub epoch: String,
    /// [`FORMAT`].
    pub format: String,
    /// Sources read, in hash order.
    pub inputs: Vec<Input>,
    /// How the Parquet outputs are encoded ([`crate::tables::Layout`]); absent: layout 1, as
    /// every epoch published before layouts were numbered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<u32>,
    /// Merkle scheme and root.
    pub merkle: Merkle,
    /// Output file → SHA-256 (every file but the manifest).
    pub outputs: BTreeMap<String, String>,
    /// Regions, roads and bounty areas, when the policy has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub places: Option<PlacesRecord>,
    /// Total points (decimal, 6 places).
    pub points_total: String,
    /// SHA-256 of `policy.toml`.
    pub policy_sha256: String,
    /// Pool, base units (decimal string).
    pub pool: String,
    /// The `[emission]` rule that produced the pool (`constant`, `halving`, `exponential`,
    /// `table`); absent when the pool was given to the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_rule: Option<String>,
    /// The prior coverage state, if any.
    pub previous_state: Option<PreviousState>,
    /// Recipients paid.
    pub recipients: u64,
    /// SHA-256 of `registry.csv`.
    pub registry_sha256: String,
    /// Writer.
    pub software: Software,
    /// Allocated or not.
    pub status: Status,
    /// The trust rule set the epoch was judged by ([`crate::trust::policy::TRUST_RULES`]);
    /// absent: rules 1, as every epoch published before rule sets were numbered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_rules: Option<u32>,
    /// Time window.
    pub window: Window,
}

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not JSON of this shape.
    #[error("not a tessera epoch manifest: {0}")]
    Json(#[from] serde_json::Error),
    /// Another format tag.
    #[error("manifest format {0:?} is not {FORMAT}")]
    Format(String),
    /// The pool is not an integer.
    #[error("pool {0:?} is not an integer number of base units")]
    Pool(String),
}

impl Manifest {
    /// Parse a manifest's bytes.
    ///
    /// # Errors
    /// [`Error::Json`] when the bytes are not a manifest of this shape, [`Error::Format`] for
    /// another format tag.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let lake = tessera::lake::Lake::open(dir.path()).unwrap();
    /// # let reg = tessera::registry::Registry::parse(b"device_id,wallet\n", "r").unwrap();
    /// # let e: tessera::epoch::Epoch = "2026-W47".parse().unwrap();
    /// # let inputs = tessera::pipeline::EpochInputs::new(e, 1000, reg);
    /// # tessera::pipeline::run(&lake, &inputs, &tessera::pipeline::no_progress).unwrap();
    /// let bytes = std::fs::read(lake.epoch_dir(&e).join("manifest.json")).unwrap();
    /// let m = tessera::manifest::Manifest::from_slice(&bytes).unwrap();
    /// assert_eq!(m.status, tessera::manifest::Status::NoPoints);
    /// assert_eq!(m.to_bytes(), bytes); // a manifest keeps its bytes
    /// ```
    pub fn from_slice(bytes: &[u8]) -> Result<Manifest, Error> {
        let m: Manifest = serde_json::from_slice(bytes)?;
        if m.format != FORMAT {
            return Err(Error::Format(m.format));
        }
        Ok(m)
    }

    /// The bytes as published: pretty-printed JSON and a final newline.
    ///
    /// ```
    /// // see Manifest::from_slice
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = serde_json::to_vec_pretty(self).expect("a manifest always serializes");
        b.push(b'\n');
        b
    }

    /// The pool as an integer.
    ///
    /// # Errors
    /// [`Error::Pool`] when the string is not an integer.
    ///
    /// ```
    /// // see Manifest::from_slice
    /// ```
    pub fn pool_units(&self) -> Result<u128, Error> {
        self.pool.parse().map_err(|_| Error::Pool(self.pool.clone()))
    }

    /// What differs between the inputs of two manifests of the same epoch, in words (empty when
    /// they were computed from the same sources, policy, pool, registry, prior state and
    /// software).
    ///
    /// ```
    /// // see Manifest::from_slice
    /// ```
    pub fn input_changes(&self, other: &Manifest) -> Vec<String> {
        let mut out = Vec::new();
        if self.inputs != other.inputs {
            let a: std::collections::BTreeSet<&str> = self.inputs.iter().map(|i| i.source.as_str()).collect();
            let b: std::collections::BTreeSet<&str> = other.inputs.iter().map(|i| i.source.as_str()).collect();
            out.push(format!(
                "inputs: {} source(s) added, {} removed, {} changed",
                b.difference(&a).count(),
                a.difference(&b).count(),
                self.inputs
                    .iter()
                    .filter(|i| other.inputs.iter().any(|j| j.source == i.source && j != *i))
                    .count()
            ));
        }
        if self.policy_sha256 != other.policy_sha256 {
            out.push("policy: a different policy.toml".into());
        }
        if self.pool != other.pool {
            out.push(format!("pool: {} → {}", self.pool, other.pool));
        }
        if self.trust_rules != other.trust_rules {
            let n = |r: Option<u32>| r.unwrap_or(1);
            out.push(format!(
                "trust rules: {} → {}",
                n(self.trust_rules),
                n(other.trust_rules)
            ));
        }
        if self.registry_sha256 != other.registry_sha256 {
            out.push("registry: a different registry.csv".into());
        }
        if self.previous_state != other.previous_state {
            let name = |p: &Option<PreviousState>| p.as_ref().map_or("none".to_string(), |p| p.epoch.clone());
            out.push(format!(
                "prior state: {} → {}",
                name(&self.previous_state),
                name(&other.previous_state)
            ));
        }
        if self.software != other.software {
            out.push(format!(
                "software: {} {} → {} {}",
                self.software.name, self.software.version, other.software.name, other.software.version
            ));
        }
        out
    }
}
