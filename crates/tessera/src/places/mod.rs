//! Where rewards are paid: regions (a multiplier per area), the road network (only road cells
//! earn) and bounty areas, each turned into H3 cells at the scoring resolution.
//!
//! [`Places`] is plain data (sorted cell lists) that scoring looks up; [`build()`] makes it from
//! the policy's `[[regions]]`, `[roads]` and `[[bounties]]` by reading their sources through a
//! [`shapes::ShapeReader`] (GeoJSON and OpenStreetMap PBF natively; other OGR formats through
//! GDAL at the CLI edge). An epoch stores its places as `places.parquet`, so `epoch verify`
//! recomputes it without the sources or GDAL.

pub mod build;
pub mod cache;
pub mod cell_set;
pub mod cells_file;
pub mod lookup;
pub mod osm;
pub mod policy;
pub mod shapes;
pub mod tile;

pub use cell_set::{CellSet, Near};
pub use lookup::gallop;

pub use build::{build, source_records};

use crate::fixed::Ppm;

/// A region: its name and multiplier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Name (from the source's `name_field`).
    pub name: String,
    /// Region multiplier, ppm.
    pub weight: Ppm,
}

/// A bounty's area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BountyArea {
    /// The bounty's id.
    pub id: String,
    /// Its cells, sorted.
    pub cells: Vec<u64>,
}

/// A source file places were read from, for the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceSource {
    /// `region`, `roads` or `bounty:<id>`.
    pub role: String,
    /// Path as written in the policy.
    pub path: String,
    /// SHA-256 of its bytes (hex).
    pub sha256: String,
}

/// Regions, road cells and bounty areas at the scoring resolution.
///
/// ```
/// use tessera::places::{Places, Region};
/// let p = Places {
///     regions: vec![Region { name: "harbour".into(), weight: 1_500_000 }],
///     region_cells: vec![(10, 0), (12, 0)],
///     roads: Some(vec![(10, 9_000)]),
///     ..Places::default()
/// };
/// assert_eq!(p.region_of(12), Some(0));
/// assert_eq!(p.region_of(11), None);
/// assert_eq!((p.on_road(10), p.on_road(12)), (Some(true), Some(false)));
/// assert_eq!(Places::default().on_road(10), None); // no road network: not judged
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Places {
    /// Regions, sorted by name.
    pub regions: Vec<Region>,
    /// (cell, index into `regions`), sorted by cell, one entry per cell.
    pub region_cells: Vec<(u64, u32)>,
    /// (cell, road length in mm) sorted by cell; buffer cells have length 0. `None`: no road
    /// network configured.
    pub roads: Option<Vec<(u64, u64)>>,
    /// Bounty areas, in policy order.
    pub bounties: Vec<BountyArea>,
    /// Source files read (empty when loaded from `places.parquet`).
    pub sources: Vec<PlaceSource>,
}

impl Places {
    /// Whether nothing is configured (policy v1).
    ///
    /// ```
    /// assert!(tessera::places::Places::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.regions.is_empty() && self.roads.is_none() && self.bounties.is_empty()
    }

    /// The region of a cell (index into `regions`), if any.
    ///
    /// ```
    /// assert_eq!(tessera::places::Places::default().region_of(1), None);
    /// ```
    pub fn region_of(&self, cell: u64) -> Option<u32> {
        self.region_cells
            .binary_search_by_key(&cell, |r| r.0)
            .ok()
            .map(|i| self.region_cells[i].1)
    }

    /// Add regions listed elsewhere (a region whose cells all went to another region has no
    /// row in `places.parquet`; `regions.parquet` and the places cache list it): regions are
    /// kept sorted by name and `region_cells` re-pointed. A name already present must come with
    /// the same weight.
    ///
    /// # Errors
    /// A message naming a region listed with two weights.
    ///
    /// ```
    /// use tessera::places::{Places, Region};
    /// let mut p = Places {
    ///     regions: vec![Region { name: "b".into(), weight: 2_000_000 }],
    ///     region_cells: vec![(10, 0)],
    ///     ..Places::default()
    /// };
    /// p.add_regions([Region { name: "a".into(), weight: 3_000_000 }]).unwrap();
    /// assert_eq!(p.regions.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    /// assert_eq!(p.region_of(10), Some(1));
    /// assert!(p.add_regions([Region { name: "b".into(), weight: 1 }]).is_err());
    /// ```
    pub fn add_regions(&mut self, more: impl IntoIterator<Item = Region>) -> Result<(), String> {
        let mut all = self.regions.clone();
        for r in more {
            match all.iter().find(|x| x.name == r.name) {
                Some(x) if x.weight != r.weight => {
                    return Err(format!(
                        "region {:?} is listed with weights {} and {}",
                        r.name, x.weight, r.weight
                    ))
                }
                Some(_) => {}
                None => all.push(r),
            }
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        let new_index: Vec<u32> = self
            .regions
            .iter()
            .map(|r| all.binary_search_by(|x| x.name.cmp(&r.name)).expect("kept") as u32)
            .collect();
        for (_, r) in &mut self.region_cells {
            *r = new_index[*r as usize];
        }
        self.regions = all;
        Ok(())
    }

    /// Whether a cell is a road cell (`None` when no road network is configured).
    ///
    /// ```
    /// assert_eq!(tessera::places::Places::default().on_road(1), None);
    /// ```
    pub fn on_road(&self, cell: u64) -> Option<bool> {
        self.roads
            .as_ref()
            .map(|r| r.binary_search_by_key(&cell, |x| x.0).is_ok())
    }

    /// [`Places::region_of`], looked up from `*at` (the previous answer's position) with
    /// [`gallop`]: the same answer, cheaper for cells in order.
    ///
    /// ```
    /// let p = tessera::places::Places { region_cells: vec![(7, 0)], ..Default::default() };
    /// let mut at = 0;
    /// assert_eq!(p.region_of_near(7, &mut at), p.region_of(7));
    /// ```
    pub fn region_of_near(&self, cell: u64, at: &mut usize) -> Option<u32> {
        gallop(&self.region_cells, cell, at)
            .ok()
            .map(|i| self.region_cells[i].1)
    }

    /// [`Places::on_road`] from `*at`, as [`Places::region_of_near`].
    ///
    /// ```
    /// let p = tessera::places::Places { roads: Some(vec![(7, 1000)]), ..Default::default() };
    /// assert_eq!(p.on_road_near(7, &mut 0), Some(true));
    /// ```
    pub fn on_road_near(&self, cell: u64, at: &mut usize) -> Option<bool> {
        self.roads.as_ref().map(|r| gallop(r, cell, at).is_ok())
    }

    /// [`Places::road_mm`] from `*at`, as [`Places::region_of_near`].
    ///
    /// ```
    /// let p = tessera::places::Places { roads: Some(vec![(7, 1000)]), ..Default::default() };
    /// assert_eq!(p.road_mm_near(7, &mut 0), 1000);
    /// ```
    pub fn road_mm_near(&self, cell: u64, at: &mut usize) -> u64 {
        self.roads
            .as_ref()
            .and_then(|r| gallop(r, cell, at).ok().map(|i| r[i].1))
            .unwrap_or(0)
    }

    /// Road length inside a cell, mm (0 off the network or with none configured).
    ///
    /// ```
    /// assert_eq!(tessera::places::Places::default().road_mm(1), 0);
    /// ```
    pub fn road_mm(&self, cell: u64) -> u64 {
        self.roads
            .as_ref()
            .and_then(|r| r.binary_search_by_key(&cell, |x| x.0).ok().map(|i| r[i].1))
            .unwrap_or(0)
    }

    /// Total road length of the network, mm.
    ///
    /// ```
    /// assert_eq!(tessera::places::Places::default().road_total_mm(), 0);
    /// ```
    pub fn road_total_mm(&self) -> u64 {
        self.roads.as_ref().map_or(0, |r| r.iter().map(|x| x.1).sum())
    }
}
