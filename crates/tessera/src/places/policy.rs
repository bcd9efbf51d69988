//! The policy's place keys: `[[regions]]`, `[roads]` and `[[bounties]]`. Source paths are
//! relative to the policy file's directory. Every key has a documented default; a policy without
//! them is policy v1 (region multiplier 1 everywhere, every cell earns, no bounty).

use serde::{Deserialize, Serialize};

/// One `[[regions]]` entry: polygons from an OGR source, each feature a region.
///
/// A cell belongs to the region whose polygon contains the cell's centre (H3
/// `ContainsCentroid`). Overlaps: the first `[[regions]]` entry that contains the centre wins;
/// within one entry, the region whose name sorts first. Features sharing a name are one region
/// (their weights must agree).
///
/// ```
/// let p = tessera::policy::Policy::from_toml_str(
///     "[[regions]]\nsource = \"districts.geojson\"\nname_field = \"name\"\nweight = 1.5\n").unwrap();
/// assert_eq!(p.regions[0].weight, Some(1.5));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionSource {
    /// GeoJSON natively; GeoPackage, Shapefile, FlatGeobuf, KML and any other OGR source with
    /// the GIS build (GDAL). Relative to the policy file.
    pub source: String,
    /// Layer name (default: the first layer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// Attribute holding the region's name.
    pub name_field: String,
    /// Region multiplier for every feature of this source, in [0, 1000].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// Attribute holding each feature's multiplier (instead of `weight`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_field: Option<String>,
}

/// `[roads]`: the road network. With it, only road cells earn; coverage is also reported in
/// road-km (unique and fresh).
///
/// Road cells: each road way's segments are walked in steps of at most 1 m (linear in
/// longitude/latitude between nodes) and every H3 cell a step's midpoint falls in is a road cell
/// carrying that step's length; then `buffer_cells` rings of neighbours are road cells too (with
/// no length of their own), for the GNSS error across a wide road.
///
/// ```
/// let p = tessera::policy::Policy::from_toml_str("[roads]\nsource = \"city.osm.pbf\"\n").unwrap();
/// let r = p.roads.unwrap();
/// assert_eq!((r.buffer_cells, r.highways.contains(&"residential".to_string())), (1, true));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoadsPolicy {
    /// OpenStreetMap extract (`.osm.pbf`, read natively) or a line layer (GeoJSON natively, any
    /// OGR source with the GIS build) whose `highway` attribute names the class.
    pub source: String,
    /// Layer name for OGR sources (default: the first layer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// `highway=*` classes that are roads (default: the drivable ones, see [`default_highways`]).
    pub highways: Vec<String>,
    /// Rings of neighbour cells added around the road cells (default 1; 0..=3).
    pub buffer_cells: u32,
    /// Trust (with `[trust]` on): a source whose accepted track runs off the road network for
    /// more than this share of its length is withheld whole, detector `off_road` (default 0.5).
    pub max_off_road_share: f64,
    /// Tracks shorter than this are not judged off-road, km (default 1.0).
    pub min_off_road_km: f64,
}

/// The `highway=*` classes a car drives on: motorway to residential with their links,
/// `unclassified`, `living_street` and `service`.
///
/// ```
/// assert!(!tessera::places::policy::default_highways().contains(&"footway".to_string()));
/// ```
pub fn default_highways() -> Vec<String> {
    [
        "motorway",
        "motorway_link",
        "trunk",
        "trunk_link",
        "primary",
        "primary_link",
        "secondary",
        "secondary_link",
        "tertiary",
        "tertiary_link",
        "unclassified",
        "residential",
        "living_street",
        "service",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

impl Default for RoadsPolicy {
    fn default() -> Self {
        RoadsPolicy {
            source: String::new(),
            layer: None,
            highways: default_highways(),
            buffer_cells: 1,
            max_off_road_share: 0.5,
            min_off_road_km: 1.0,
        }
    }
}

/// What happens to a bounty's pool in an epoch where nobody earned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Unclaimed {
    /// Added to the next epoch of its range (default); after the last one it returns to the funder.
    #[default]
    Rollover,
    /// Returned to the funder at once.
    Return,
}

/// One `[[bounties]]` entry: a map consumer's extra pool for an area and an epoch range.
///
/// ```
/// let p = tessera::policy::Policy::from_toml_str(
///     "[[bounties]]\nid = \"harbour\"\nsource = \"harbour.geojson\"\npool = \"5000\"\nfirst_epoch = \"2026-W46\"\nlast_epoch = \"2026-W49\"\n").unwrap();
/// assert_eq!(p.bounties[0].unclaimed, tessera::places::policy::Unclaimed::Rollover);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BountyPolicy {
    /// Identifier (letters, digits, `-`, `_`; unique), as in `rewards.parquet` kind `bounty:<id>`.
    pub id: String,
    /// Area: every polygon of this source (cells by centre, as regions).
    pub source: String,
    /// Layer name (default: the first layer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// Base units paid per epoch of the range (a decimal integer string: money is never a float).
    pub pool: String,
    /// First epoch (ISO week) of the range.
    pub first_epoch: String,
    /// Last epoch (inclusive).
    pub last_epoch: String,
    /// Only cells last covered at least this many epochs ago (or never) count (default 0: all).
    #[serde(default)]
    pub min_age_epochs: u32,
    /// Unclaimed pool: `rollover` (default) or `return`.
    #[serde(default)]
    pub unclaimed: Unclaimed,
}

/// A base-unit amount written as a decimal integer string below 10^38 (what `Decimal128(38, 0)`
/// holds).
///
/// # Errors
/// A message when the text is not such an integer.
///
/// ```
/// assert_eq!(tessera::places::policy::parse_amount("1_000"), Ok(1000));
/// assert!(tessera::places::policy::parse_amount("1.5").is_err());
/// ```
pub fn parse_amount(s: &str) -> Result<u128, String> {
    let t: String = s.trim().chars().filter(|c| *c != '_').collect();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) || t.len() > 38 {
        return Err(format!("{s:?} is not a whole number of base units below 10^38"));
    }
    t.parse::<u128>().map_err(|e| format!("{s:?}: {e}"))
}

/// Check the place keys of a policy without reading any file.
///
/// # Errors
/// `(field, message)` for the first key out of range.
///
/// ```
/// let p = tessera::policy::Policy::from_toml_str("[roads]\nsource = \"x.osm.pbf\"\nbuffer_cells = 9\n");
/// assert!(p.unwrap_err().to_string().contains("roads.buffer_cells"));
/// ```
pub fn validate(p: &crate::policy::Policy) -> Result<(), (&'static str, String)> {
    for r in &p.regions {
        if r.source.is_empty() || r.name_field.is_empty() {
            return Err(("regions", "each entry needs `source` and `name_field`".into()));
        }
        if r.weight.is_some() && r.weight_field.is_some() {
            return Err((
                "regions.weight",
                format!("{}: give `weight` or `weight_field`, not both", r.source),
            ));
        }
        if let Some(w) = r.weight {
            crate::fixed::to_ppm(w, 1000.0).ok_or(("regions.weight", format!("{}: must be in [0, 1000]", r.source)))?;
        }
    }
    if let Some(r) = &p.roads {
        if r.source.is_empty() {
            return Err(("roads.source", "must name a road network file".into()));
        }
        if r.buffer_cells > 3 {
            return Err(("roads.buffer_cells", "must be 0..=3".into()));
        }
        if crate::fixed::to_ppm(r.max_off_road_share, 1.0).is_none() {
            return Err(("roads.max_off_road_share", "must be in [0, 1]".into()));
        }
        if !(r.min_off_road_km.is_finite() && r.min_off_road_km >= 0.0 && r.min_off_road_km < 1e6) {
            return Err(("roads.min_off_road_km", "must be a distance in [0, 1e6) km".into()));
        }
        if r.highways.is_empty() {
            return Err(("roads.highways", "must name at least one class".into()));
        }
    }
    let mut ids = std::collections::BTreeSet::new();
    for b in &p.bounties {
        let ok_id = !b.id.is_empty()
            && b.id
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
        if !ok_id || !ids.insert(b.id.as_str()) {
            return Err((
                "bounties.id",
                format!("{:?}: must be unique, letters, digits, - and _", b.id),
            ));
        }
        parse_amount(&b.pool).map_err(|m| ("bounties.pool", format!("{}: {m}", b.id)))?;
        let first: crate::epoch::Epoch = b
            .first_epoch
            .parse()
            .map_err(|e| ("bounties.first_epoch", format!("{}: {e}", b.id)))?;
        let last: crate::epoch::Epoch = b
            .last_epoch
            .parse()
            .map_err(|e| ("bounties.last_epoch", format!("{}: {e}", b.id)))?;
        if last.index() < first.index() {
            return Err(("bounties.last_epoch", format!("{}: before first_epoch", b.id)));
        }
        if b.source.is_empty() {
            return Err(("bounties.source", format!("{}: must name an area file", b.id)));
        }
    }
    Ok(())
}
