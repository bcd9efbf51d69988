//! The reward policy: every number the pipeline uses, read from a TOML file with documented
//! defaults. Unknown keys are an error, so a typo never silently falls back to a default.
//!
//! Decimal weights are converted once, at load time, to integer parts-per-million
//! ([`crate::fixed::SCALE`]); every kernel then works on integers only.

use crate::fixed::{to_ppm, Ppm};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A complete policy. `Policy::default()` is policy v1 as documented in the README, with the
/// trust detectors on (`[trust] enabled = false` is policy v1 exactly).
///
/// ```
/// let p = tessera::policy::Policy::from_toml_str("[novelty]\nrefresh_epochs = 8\n").unwrap();
/// assert_eq!(p.novelty.refresh_epochs, 8);
/// assert_eq!(p.h3_resolution, 12); // everything else keeps its default
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Policy format version; only 1 exists.
    pub version: u32,
    /// H3 resolution of coverage cells (0..=15). Default 12 (~300 m² cells, one road width).
    pub h3_resolution: u8,
    /// Fix-level gates.
    pub quality: QualityPolicy,
    /// Trace-level plausibility.
    pub plausibility: PlausibilityPolicy,
    /// Novelty scoring.
    pub novelty: NoveltyPolicy,
    /// Reward distribution.
    pub rewards: RewardsPolicy,
    /// Fix times against the source's receipt, applied at ingest. Written out only when it
    /// differs from the default (so policies written before it keep their bytes).
    #[serde(skip_serializing_if = "ReceiptPolicy::is_default")]
    pub receipt: ReceiptPolicy,
    /// Trust detectors and reputation (`[trust]`, see [`crate::trust`]); on by default.
    pub trust: crate::trust::policy::TrustPolicy,
    /// The epoch pool from a schedule (`[emission]`); none by default (the pool is given per run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emission: Option<crate::rewards::emission::EmissionPolicy>,
    /// The road network (`[roads]`); none by default (every cell earns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roads: Option<crate::places::policy::RoadsPolicy>,
    /// Regions (`[[regions]]`), each a multiplier over an area; none by default.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<crate::places::policy::RegionSource>,
    /// Bounties (`[[bounties]]`): extra pools for an area and an epoch range; none by default.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bounties: Vec<crate::places::policy::BountyPolicy>,
}

fn is_one(x: &f64) -> bool {
    *x == 1.0
}

/// How far a fix's time may be from when the network received its source (applied at ingest:
/// `tessera ingest --policy`, the upload server's `--policy`). Rejections: `after_receipt`,
/// `before_receipt`. Independently of these, a fix more than 512 weeks before its receipt is
/// corrected when it is whole GPS week rollovers (1024 weeks) from it, else rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiptPolicy {
    /// Largest accepted time of a fix after its receipt, seconds (default 300: device clocks
    /// run a little ahead; a fix from the future is not a recording).
    pub max_future_s: u64,
    /// Largest accepted age of a fix at receipt, days; 0 (default) for no bound, since a lake
    /// also holds archives. Networks paying weekly epochs set e.g. 30.
    pub max_age_days: u64,
}

impl Default for ReceiptPolicy {
    fn default() -> Self {
        ReceiptPolicy {
            max_future_s: 300,
            max_age_days: 0,
        }
    }
}

impl ReceiptPolicy {
    /// Whether this is the default (then it is not written to policy TOML).
    ///
    /// ```
    /// assert!(tessera::policy::ReceiptPolicy::default().is_default());
    /// ```
    pub fn is_default(&self) -> bool {
        *self == ReceiptPolicy::default()
    }

    /// The check for a source received at `received_at_ms` (UTC).
    ///
    /// ```
    /// let r = tessera::policy::ReceiptPolicy::default().at(1_000);
    /// assert_eq!((r.received_at_ms, r.max_future_ms, r.max_age_ms), (1_000, 300_000, None));
    /// ```
    pub fn at(&self, received_at_ms: i64) -> crate::ingest::receipt::Receipt {
        let ms = |x: u64, unit: i64| i64::try_from(x).unwrap_or(i64::MAX / unit).saturating_mul(unit);
        crate::ingest::receipt::Receipt {
            received_at_ms,
            max_future_ms: ms(self.max_future_s, 1000),
            max_age_ms: (self.max_age_days > 0).then(|| ms(self.max_age_days, 86_400_000)),
        }
    }
}

/// How rewards are distributed on chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardsPolicy {
    /// Merkle scheme: `"evm-standard-v1"` (default; OpenZeppelin StandardMerkleTree over
    /// `(address, uint256)`) or `"solana-sha256-v1"` (base58 wallets, u64 amounts).
    pub merkle: crate::merkle::Scheme,
    /// Largest share of the epoch pool one wallet receives, in (0, 1] (default 1: no cap). The
    /// excess is redistributed exactly over the others, pro rata ([`crate::rewards::cap`]).
    #[serde(skip_serializing_if = "is_one")]
    pub max_wallet_share: f64,
}

impl Default for RewardsPolicy {
    fn default() -> Self {
        RewardsPolicy {
            merkle: crate::merkle::Scheme::default(),
            max_wallet_share: 1.0,
        }
    }
}

/// Fix-level gates: a fix failing one is rejected with that reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityPolicy {
    /// Largest accepted HDOP (default 4.0). A fix without HDOP is rejected.
    pub max_hdop: f64,
    /// Fewest satellites accepted (default 4). A fix without a satellite count is accepted
    /// unless `require_sats` is set (GPX files often omit it).
    pub min_sats: u8,
    /// Reject fixes that do not report a satellite count (default false).
    pub require_sats: bool,
}

/// Trace-level plausibility between consecutive fixes of one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlausibilityPolicy {
    /// Speed between consecutive fixes above which the jump is a teleport (m/s, default 60).
    pub max_speed_mps: f64,
    /// A gap longer than this splits the trace into segments (seconds, default 30).
    pub max_gap_s: u32,
}

/// Novelty scoring, policy v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoveltyPolicy {
    /// Weight of the 1st, 2nd, ... device to visit a cell in the epoch; later ranks get 0.
    pub rank_weights: Vec<f64>,
    /// Freshness weight of a cell never covered before (default 2.0).
    pub discovery_weight: f64,
    /// A cell last covered k epochs ago gets min(1, k / refresh_epochs) (default 4).
    pub refresh_epochs: u32,
    /// HDOP at or below which the quality multiplier is 1 (default 1.0).
    pub full_quality_hdop: f64,
    /// Quality multiplier at `quality.max_hdop` (default 0.5), linear in between.
    pub min_quality: f64,
    /// Region multiplier of a cell in no `[[regions]]` area (default 1; 0 pays only inside
    /// regions).
    #[serde(skip_serializing_if = "is_one")]
    pub outside_region_weight: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            version: 1,
            h3_resolution: 12,
            quality: QualityPolicy::default(),
            plausibility: PlausibilityPolicy::default(),
            novelty: NoveltyPolicy::default(),
            rewards: RewardsPolicy::default(),
            receipt: ReceiptPolicy::default(),
            trust: crate::trust::policy::TrustPolicy::default(),
            emission: None,
            roads: None,
            regions: Vec::new(),
            bounties: Vec::new(),
        }
    }
}

impl Default for QualityPolicy {
    fn default() -> Self {
        QualityPolicy {
            max_hdop: 4.0,
            min_sats: 4,
            require_sats: false,
        }
    }
}

impl Default for PlausibilityPolicy {
    fn default() -> Self {
        PlausibilityPolicy {
            max_speed_mps: 60.0,
            max_gap_s: 30,
        }
    }
}

impl Default for NoveltyPolicy {
    fn default() -> Self {
        NoveltyPolicy {
            rank_weights: vec![1.0, 0.5, 0.25],
            discovery_weight: 2.0,
            refresh_epochs: 4,
            full_quality_hdop: 1.0,
            min_quality: 0.5,
            outside_region_weight: 1.0,
        }
    }
}

/// A policy that cannot be used, with the field at fault.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("policy {path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// The TOML is malformed or has an unknown key.
    #[error("policy {path}: {message}")]
    Toml { path: String, message: String },
    /// A value is out of range.
    #[error("policy field {field}: {message}")]
    Invalid { field: &'static str, message: String },
}

/// The policy in the integer form the kernels use.
#[derive(Debug, Clone, PartialEq)]
pub struct Kernels {
    /// H3 resolution.
    pub resolution: h3o::Resolution,
    /// Largest HDOP, hundredths.
    pub max_hdop_centi: u32,
    /// Fewest satellites.
    pub min_sats: u8,
    /// Reject fixes with no satellite count.
    pub require_sats: bool,
    /// Teleport speed, mm/s.
    pub max_speed_mm_s: u64,
    /// Longest gap inside a segment, ms.
    pub max_gap_ms: i64,
    /// Rank weights, ppm.
    pub rank_weights: Vec<Ppm>,
    /// Discovery weight, ppm.
    pub discovery: Ppm,
    /// Refresh epochs.
    pub refresh_epochs: u32,
    /// HDOP (hundredths) at or below which quality is full.
    pub full_quality_hdop_centi: u32,
    /// Quality multiplier at the HDOP limit, ppm.
    pub min_quality: Ppm,
    /// Merkle scheme of the distribution.
    pub merkle: crate::merkle::Scheme,
    /// The trust detectors' thresholds; `None` when `[trust] enabled = false` (policy v1).
    pub trust: Option<crate::trust::policy::TrustKernels>,
    /// Region multiplier outside every region, ppm.
    pub outside_region: Ppm,
    /// Largest share of the pool per wallet, ppm (1 000 000: no cap).
    pub max_wallet_share: Ppm,
    /// The off-road detector's thresholds (`None` without `[roads]`).
    pub off_road: Option<crate::trust::roads::OffRoadKernels>,
}

impl Policy {
    /// Parse and validate a policy from TOML text.
    ///
    /// # Errors
    /// [`PolicyError`] naming the key that is unknown, mistyped or out of range.
    ///
    /// ```
    /// use tessera::policy::Policy;
    /// let p = Policy::from_toml_str("[quality]\nmax_hdop = 2.5\n").unwrap();
    /// assert_eq!(p.quality.max_hdop, 2.5);
    /// assert!(Policy::from_toml_str("[quality]\nmax_hdpo = 2.5\n").unwrap_err().to_string().contains("max_hdpo"));
    /// ```
    pub fn from_toml_str(text: &str) -> Result<Policy, PolicyError> {
        Self::parse(text, "<string>")
    }

    fn parse(text: &str, path: &str) -> Result<Policy, PolicyError> {
        let p: Policy = toml::from_str(text).map_err(|e| PolicyError::Toml {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        p.kernels()?;
        Ok(p)
    }

    /// Read and validate a policy file.
    ///
    /// # Errors
    /// [`PolicyError`] naming the file, and the key as [`Policy::from_toml_str`].
    ///
    /// ```
    /// # let d = tempfile::tempdir().unwrap();
    /// let path = d.path().join("policy.toml");
    /// std::fs::write(&path, tessera::policy::Policy::default().to_toml()).unwrap();
    /// assert_eq!(tessera::policy::Policy::load(&path).unwrap(), tessera::policy::Policy::default());
    /// ```
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The policy as TOML text (what is stored beside an epoch's outputs).
    ///
    /// ```
    /// use tessera::policy::Policy;
    /// let text = Policy::default().to_toml();
    /// assert_eq!(Policy::from_toml_str(&text).unwrap(), Policy::default());
    /// ```
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("policy serializes")
    }

    /// Validate and convert to integer kernel parameters.
    ///
    /// ```
    /// let k = tessera::policy::Policy::default().kernels().unwrap();
    /// assert_eq!(k.rank_weights, vec![1_000_000, 500_000, 250_000]);
    /// assert_eq!(k.max_hdop_centi, 400);
    /// ```
    ///
    /// # Errors
    /// [`PolicyError`] when a value is out of its documented range.
    pub fn kernels(&self) -> Result<Kernels, PolicyError> {
        fn bad(field: &'static str, message: impl Into<String>) -> PolicyError {
            PolicyError::Invalid {
                field,
                message: message.into(),
            }
        }
        if self.version != 1 {
            return Err(bad("version", format!("only version 1 exists, got {}", self.version)));
        }
        let resolution = h3o::Resolution::try_from(self.h3_resolution)
            .map_err(|_| bad("h3_resolution", format!("must be 0..=15, got {}", self.h3_resolution)))?;
        let q = &self.quality;
        if !(q.max_hdop.is_finite() && q.max_hdop > 0.0 && q.max_hdop <= 100.0) {
            return Err(bad("quality.max_hdop", "must be in (0, 100]"));
        }
        let pl = &self.plausibility;
        if !(pl.max_speed_mps.is_finite() && pl.max_speed_mps > 0.0 && pl.max_speed_mps < 1e6) {
            return Err(bad("plausibility.max_speed_mps", "must be a positive speed below 1e6"));
        }
        if pl.max_gap_s == 0 {
            return Err(bad("plausibility.max_gap_s", "must be at least 1"));
        }
        let n = &self.novelty;
        let mut rank_weights = Vec::with_capacity(n.rank_weights.len());
        for w in &n.rank_weights {
            rank_weights.push(
                to_ppm(*w, 1000.0).ok_or_else(|| bad("novelty.rank_weights", "each weight must be in [0, 1000]"))?,
            );
        }
        let discovery = to_ppm(n.discovery_weight, 1000.0)
            .ok_or_else(|| bad("novelty.discovery_weight", "must be in [0, 1000]"))?;
        if n.refresh_epochs == 0 {
            return Err(bad("novelty.refresh_epochs", "must be at least 1"));
        }
        let min_quality = to_ppm(n.min_quality, 1.0).ok_or_else(|| bad("novelty.min_quality", "must be in [0, 1]"))?;
        if !(n.full_quality_hdop.is_finite() && n.full_quality_hdop >= 0.0 && n.full_quality_hdop <= q.max_hdop) {
            return Err(bad("novelty.full_quality_hdop", "must be in [0, quality.max_hdop]"));
        }
        let outside_region = to_ppm(n.outside_region_weight, 1000.0)
            .ok_or_else(|| bad("novelty.outside_region_weight", "must be in [0, 1000]"))?;
        let max_wallet_share = to_ppm(self.rewards.max_wallet_share, 1.0)
            .filter(|s| *s > 0)
            .ok_or_else(|| bad("rewards.max_wallet_share", "must be in (0, 1]"))?;
        crate::places::policy::validate(self).map_err(|(field, m)| bad(field, m))?;
        if let Some(em) = &self.emission {
            em.validate().map_err(|(field, m)| bad(field, m))?;
        }
        let off_road = self.roads.as_ref().map(|r| crate::trust::roads::OffRoadKernels {
            max_share: to_ppm(r.max_off_road_share, 1.0).unwrap_or(crate::fixed::SCALE),
            min_m: (r.min_off_road_km * 1000.0).round() as u64,
        });
        Ok(Kernels {
            off_road,
            outside_region,
            max_wallet_share,
            resolution,
            max_hdop_centi: (q.max_hdop * 100.0).round() as u32,
            min_sats: q.min_sats,
            require_sats: q.require_sats,
            max_speed_mm_s: (pl.max_speed_mps * 1000.0).round() as u64,
            max_gap_ms: i64::from(pl.max_gap_s) * 1000,
            rank_weights,
            discovery,
            refresh_epochs: n.refresh_epochs,
            full_quality_hdop_centi: (n.full_quality_hdop * 100.0).round() as u32,
            min_quality,
            merkle: self.rewards.merkle,
            trust: self.trust.kernels()?,
        })
    }
}

/// The optional keys, documented with their defaults as TOML comments: what `tessera policy`
/// prints after the default policy. Every line uncommented is a valid policy (tested).
pub const OPTIONAL_KEYS_DOC: &str = r#"
# ---- Optional keys (commented out: none of them is in the default policy) ----
#
# [novelty]
# outside_region_weight = 1.0   # region multiplier of cells in no [[regions]] area (0: pay only inside)
#
# [rewards]
# max_wallet_share = 1.0        # largest share of the epoch pool per wallet, (0, 1]; excess redistributed exactly
#
# [emission]                    # the pool from a schedule: `epoch run` needs no --pool (a differing one is refused)
# rule = "constant"             # constant | halving | exponential | table
# pool = "1000000000000"        # base units of the first epoch (a decimal string, never a float)
# start_epoch = "2026-W01"      # earlier epochs have no pool
# halving_epochs = 52           # halving: pool >> (n / halving_epochs)
# decay = 0.99                  # exponential: floor(previous × decay) each epoch
# # table = [{ from_epoch = "2026-W01", pool = "1000" }, { from_epoch = "2026-W30", pool = "500" }]
#
# [[regions]]                   # repeat per source; a cell belongs to the region containing its centre
# source = "districts.gpkg"     # GeoJSON natively, any OGR format (GeoPackage, Shapefile, FlatGeobuf, KML) with GDAL; relative to this file
# layer = "districts"           # default: the first layer
# name_field = "name"
# weight = 1.5                  # or weight_field = "weight"; overlaps: first entry, then first name wins
#
# [roads]                       # only road cells earn; coverage also in road-km
# source = "city.osm.pbf"       # OpenStreetMap PBF, or a line layer with a `highway` attribute
# highways = ["motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link", "secondary", "secondary_link", "tertiary", "tertiary_link", "unclassified", "residential", "living_street", "service"]
# buffer_cells = 1              # rings of neighbour cells that count as road (0..=3)
# max_off_road_share = 0.5      # trust: a source off the network for more of its length is withheld whole (detector off_road)
# min_off_road_km = 1.0         # shorter tracks are not judged off-road
#
# [[bounties]]                  # an extra pool for an area and an epoch range
# id = "harbour"                # rewards.parquet kind "bounty:harbour"
# source = "harbour.geojson"    # polygons; cells by centre
# pool = "50000000000"          # base units per epoch of the range
# first_epoch = "2026-W46"
# last_epoch = "2026-W52"
# min_age_epochs = 0            # only cells last covered at least this many epochs ago (or never)
# unclaimed = "rollover"        # rollover (to the next epoch of the range, then returned) | return
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_keys_doc_uncommented_is_a_valid_policy_with_the_documented_defaults() {
        let text: String = OPTIONAL_KEYS_DOC
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| !l.starts_with("----") && !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        let p = Policy::from_toml_str(&text).unwrap();
        let d = Policy::default();
        assert_eq!(p.novelty.outside_region_weight, d.novelty.outside_region_weight);
        assert_eq!(p.rewards.max_wallet_share, d.rewards.max_wallet_share);
        let em = p.emission.unwrap();
        let de = crate::rewards::emission::EmissionPolicy::default();
        assert_eq!(
            (em.rule, em.halving_epochs, em.decay),
            (de.rule, de.halving_epochs, de.decay)
        );
        let r = p.roads.unwrap();
        let dr = crate::places::policy::RoadsPolicy::default();
        assert_eq!((r.highways, r.buffer_cells), (dr.highways, dr.buffer_cells));
        assert_eq!(p.bounties[0].unclaimed, crate::places::policy::Unclaimed::Rollover);
        assert_eq!(p.bounties[0].min_age_epochs, 0);
    }

    #[test]
    fn defaults_are_policy_v1() {
        let k = Policy::default().kernels().unwrap();
        assert_eq!(k.resolution, h3o::Resolution::Twelve);
        assert_eq!(k.discovery, 2_000_000);
        assert_eq!(k.refresh_epochs, 4);
        assert_eq!(k.min_quality, 500_000);
        assert_eq!(k.full_quality_hdop_centi, 100);
        assert_eq!(k.min_sats, 4);
    }

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let e = Policy::from_toml_str("[novelty]\nrefresh_epoch = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("refresh_epoch"), "{e}");
    }

    #[test]
    fn out_of_range_values_name_the_field() {
        for (text, field) in [
            ("h3_resolution = 16", "h3_resolution"),
            ("[quality]\nmax_hdop = -1", "quality.max_hdop"),
            ("[novelty]\nrank_weights = [1.0, -0.5]", "novelty.rank_weights"),
            ("[novelty]\nmin_quality = 1.5", "novelty.min_quality"),
            ("[novelty]\nrefresh_epochs = 0", "novelty.refresh_epochs"),
            ("version = 2", "version"),
            ("[rewards]\nmerkle = \"sha1\"", "merkle"),
        ] {
            let e = Policy::from_toml_str(text).unwrap_err().to_string();
            assert!(e.contains(field), "{text}: {e}");
        }
    }
}
