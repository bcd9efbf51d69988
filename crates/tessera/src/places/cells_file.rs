//! The places cache's cell file (`<lake>/cache/places/<key>.cells`): the regions and cell lists
//! of a [`Places`], the lists as little-endian arrays, so that a cached run gets its places back
//! with a copy instead of decoding `places.parquet` (6 M rows at 10^7 fixes' places: ~0.35 s of the epoch
//! run before its first source was read). It is a private file of [`super::cache`], written
//! beside the entry's `places.parquet` bytes from the same [`Places`], and trusted only when its
//! BLAKE3 is the one the entry's JSON holds (the module is public for its layout's docs and
//! tests; nothing else reads these files).
//!
//! Layout (every integer little-endian):
//!
//! | bytes | what |
//! | --- | --- |
//! | 8 | [`MAGIC`] |
//! | 8 | `g`, regions (sorted by name, names unique: [`Places::regions`]) |
//! | per region: 8, 8, `len` | its weight (ppm), `len`, its name (UTF-8) |
//! | 8 | `n`, region cells |
//! | 8·n, 4·n | their cells (u64), then their region indices (u32) into the regions above |
//! | 8 | `m`, road cells; `u64::MAX`: no road network |
//! | 8·m, 8·m | their cells, then their road lengths in mm |
//! | 8 | `b`, bounty areas (the policy's, in policy order) |
//! | per area: 8, 8·k | `k`, then its cells |
//!
//! and nothing after. Columns, not rows, so that each array is cut into pieces decoded on all
//! cores.

use super::{BountyArea, Places, Region};
use rayon::prelude::*;

/// The file's first 8 bytes (the layout's version is its last digit).
pub const MAGIC: &[u8; 8] = b"TSPCELL1";

/// The regions and cell lists of `places` in this file's layout (sources and bounty ids are not
/// in it: the policy names them).
///
/// ```
/// use tessera::places::{cells_file, Places, Region};
/// let p = Places {
///     regions: vec![Region { name: "harbour".into(), weight: 1_500_000 }],
///     region_cells: vec![(10, 0)],
///     roads: Some(vec![(10, 9_000)]),
///     ..Places::default()
/// };
/// let bytes = cells_file::encode(&p);
/// assert_eq!(bytes.len(), 8 + (8 + 16 + 7) + (8 + 12) + (8 + 16) + 8);
/// ```
#[must_use]
pub fn encode(places: &Places) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        48 + places.regions.iter().map(|r| 16 + r.name.len()).sum::<usize>()
            + places.region_cells.len() * 12
            + places.roads.as_ref().map_or(0, |r| r.len() * 16)
            + places.bounties.iter().map(|b| 8 + b.cells.len() * 8).sum::<usize>(),
    );
    out.extend_from_slice(MAGIC);
    let count = |out: &mut Vec<u8>, n: usize| out.extend_from_slice(&(n as u64).to_le_bytes());
    count(&mut out, places.regions.len());
    for r in &places.regions {
        out.extend_from_slice(&r.weight.to_le_bytes());
        count(&mut out, r.name.len());
        out.extend_from_slice(r.name.as_bytes());
    }
    count(&mut out, places.region_cells.len());
    out.extend(places.region_cells.iter().flat_map(|r| r.0.to_le_bytes()));
    out.extend(places.region_cells.iter().flat_map(|r| r.1.to_le_bytes()));
    match &places.roads {
        None => out.extend_from_slice(&u64::MAX.to_le_bytes()),
        Some(roads) => {
            count(&mut out, roads.len());
            out.extend(roads.iter().flat_map(|r| r.0.to_le_bytes()));
            out.extend(roads.iter().flat_map(|r| r.1.to_le_bytes()));
        }
    }
    count(&mut out, places.bounties.len());
    for b in &places.bounties {
        count(&mut out, b.cells.len());
        out.extend(b.cells.iter().flat_map(|c| c.to_le_bytes()));
    }
    out
}

/// A file of this layout → the [`Places`] it holds (without sources), its bounty areas named
/// `bounty_ids` (the policy's, in order).
///
/// # Errors
/// A message naming the byte offset and what is wrong there: another magic, a count past the
/// end, a region name that is not UTF-8 or not after the one before it, a cell not after the
/// one before it in its list, a region index out of range, a different number of bounty areas
/// than `bounty_ids`, bytes after the last area.
///
/// ```
/// use tessera::places::{cells_file, BountyArea, Places, Region};
/// let region = |name: &str| Region { name: name.into(), weight: 1_000_000 };
/// let mut p = Places {
///     regions: vec![region("a"), region("b")],
///     region_cells: vec![(10, 0), (12, 1)],
///     bounties: vec![BountyArea { id: "x".into(), cells: vec![12] }],
///     ..Places::default()
/// };
/// let c = cells_file::decode(&cells_file::encode(&p), &["x".into()]).unwrap();
/// assert_eq!((c.regions, c.region_cells, c.roads), (p.regions.clone(), p.region_cells.clone(), None));
/// assert_eq!(c.bounties, p.bounties);
/// p.regions.pop(); // cell (12, 1) now points past the regions
/// assert!(cells_file::decode(&cells_file::encode(&p), &["x".into()]).is_err());
/// ```
pub fn decode(bytes: &[u8], bounty_ids: &[String]) -> Result<Places, String> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(8)? != MAGIC {
        return Err("byte 0: not a tessera places cell file".into());
    }
    let regions = read_regions(&mut r)?;
    let start = r.at + 8;
    let n = r.count(12)?;
    let (cells, idx) = (r.take(8 * n)?, r.take(4 * n)?);
    let region_cells: Vec<(u64, u32)> = cells
        .par_chunks_exact(8)
        .zip(idx.par_chunks_exact(4))
        .map(|(c, i)| (u64_at(c), u32::from_le_bytes([i[0], i[1], i[2], i[3]])))
        .collect();
    sorted(&region_cells, |c| c.0, start)?;
    if let Some(bad) = first_where(&region_cells, |c| c.1 as usize >= regions.len()) {
        return Err(format!(
            "byte {}: region index {} of {} regions",
            start + 8 * n + 4 * bad,
            region_cells[bad].1,
            regions.len()
        ));
    }
    let roads = match r.u64()? {
        u64::MAX => None,
        m => {
            let m = r.fits(m, 16)?;
            let at = r.at;
            let (cells, mm) = (r.take(8 * m)?, r.take(8 * m)?);
            let roads: Vec<(u64, u64)> = cells
                .par_chunks_exact(8)
                .zip(mm.par_chunks_exact(8))
                .map(|(c, l)| (u64_at(c), u64_at(l)))
                .collect();
            sorted(&roads, |c| c.0, at)?;
            Some(roads)
        }
    };
    let b = r.count(8)?;
    if b != bounty_ids.len() {
        return Err(format!(
            "byte {}: {b} bounty areas, the policy has {}",
            r.at - 8,
            bounty_ids.len()
        ));
    }
    let mut bounties = Vec::with_capacity(b);
    for id in bounty_ids {
        let k = r.count(8)?;
        let at = r.at;
        let cells: Vec<u64> = r.take(8 * k)?.par_chunks_exact(8).map(u64_at).collect();
        sorted(&cells, |c| *c, at)?;
        bounties.push(BountyArea { id: id.clone(), cells });
    }
    if r.at != bytes.len() {
        return Err(format!(
            "byte {}: {} bytes after the last area",
            r.at,
            bytes.len() - r.at
        ));
    }
    Ok(Places {
        regions,
        region_cells,
        roads,
        bounties,
        sources: Vec::new(),
    })
}

/// The region list: weights, then UTF-8 names, each after the one before it.
fn read_regions(r: &mut Reader) -> Result<Vec<Region>, String> {
    let g = r.count(16)?;
    let mut regions: Vec<Region> = Vec::with_capacity(g);
    for _ in 0..g {
        let weight = r.u64()?;
        let at = r.at;
        let len = r.count(1)?;
        let name = std::str::from_utf8(r.take(len)?).map_err(|e| format!("byte {}: region name: {e}", at + 8))?;
        if regions.last().is_some_and(|last| last.name.as_str() >= name) {
            return Err(format!(
                "byte {}: region {name:?} is not after the one before it",
                at + 8
            ));
        }
        regions.push(Region {
            name: name.to_string(),
            weight,
        });
    }
    Ok(regions)
}

/// Cells (`cell` of each item) strictly increasing, as every list of [`Places`] is (the lookups
/// search them); else the offset of the first that is not (the items' cells are 8 bytes apart
/// from `at`).
fn sorted<T: Sync>(items: &[T], cell: impl Fn(&T) -> u64 + Sync, at: usize) -> Result<(), String> {
    let pairs = items.len().saturating_sub(1);
    let not_after = (0..pairs.div_ceil(CHECK_CHUNK))
        .into_par_iter()
        .filter_map(|k| {
            let (lo, hi) = (k * CHECK_CHUNK, ((k + 1) * CHECK_CHUNK).min(pairs));
            (lo..hi).find(|&i| cell(&items[i]) >= cell(&items[i + 1]))
        })
        .min();
    match not_after {
        None => Ok(()),
        Some(i) => Err(format!(
            "byte {}: cell {:#x} is not after the one before it",
            at + 8 * (i + 1),
            cell(&items[i + 1])
        )),
    }
}

/// Items checked at a time by one core ([`sorted`], [`first_where`]): a plain loop over each
/// piece, the pieces on all cores. (rayon's `position_first` over the items themselves checked
/// its stop flag at every item: ~16 ns each, 0.1 CPU-s for the 6.5 M region cells of the 10^7
/// bench's places, most of a cached run's start.)
const CHECK_CHUNK: usize = 1 << 16;

/// The index of the first item for which `bad` holds.
fn first_where<T: Sync>(items: &[T], bad: impl Fn(&T) -> bool + Sync) -> Option<usize> {
    items
        .par_chunks(CHECK_CHUNK)
        .enumerate()
        .filter_map(|(k, piece)| Some(k * CHECK_CHUNK + piece.iter().position(&bad)?))
        .min()
}

fn u64_at(b: &[u8]) -> u64 {
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// A cursor over the file's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| {
            format!(
                "byte {}: {n} bytes wanted, the file ends at {}",
                self.at,
                self.bytes.len()
            )
        })?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u64(&mut self) -> Result<u64, String> {
        self.take(8).map(u64_at)
    }

    /// A count of items of `size` bytes each, refused when they cannot fit in what is left.
    fn count(&mut self, size: usize) -> Result<usize, String> {
        let n = self.u64()?;
        self.fits(n, size)
    }

    fn fits(&self, n: u64, size: usize) -> Result<usize, String> {
        let left = (self.bytes.len() - self.at) as u64;
        if n > left / size as u64 {
            return Err(format!(
                "byte {}: {n} items of {size} bytes, {left} bytes left",
                self.at - 8
            ));
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Places {
        let region = |name: &str, weight| Region {
            name: name.into(),
            weight,
        };
        Places {
            regions: vec![
                region("harbour", 1_500_000),
                region("old town", 0),
                region("port", 2_000_000),
            ],
            region_cells: (0..1000u64)
                .map(|c| (c * 7 + 0x08bc_0000_0000_0000, (c % 3) as u32))
                .collect(),
            roads: Some((0..500u64).map(|c| (c * 11, c * 1_000)).collect()),
            bounties: vec![
                BountyArea {
                    id: "a".into(),
                    cells: vec![1, 2, 3],
                },
                BountyArea {
                    id: "b".into(),
                    cells: vec![],
                },
            ],
            ..Places::default()
        }
    }

    fn ids() -> Vec<String> {
        vec!["a".into(), "b".into()]
    }

    #[test]
    fn rule_a_decoded_file_gives_back_every_cell_list_it_was_written_from() {
        let p = sample();
        let c = decode(&encode(&p), &ids()).unwrap();
        assert_eq!(c.regions, p.regions);
        assert_eq!(c.region_cells, p.region_cells);
        assert_eq!(c.roads, p.roads);
        assert_eq!(c.bounties, p.bounties);
        // No road network stays no road network (not an empty one).
        let none = Places { roads: None, ..p };
        assert_eq!(decode(&encode(&none), &ids()).unwrap().roads, None);
        let empty = Places {
            roads: Some(vec![]),
            ..none
        };
        assert_eq!(decode(&encode(&empty), &ids()).unwrap().roads, Some(vec![]));
    }

    #[test]
    fn rule_the_first_cell_out_of_order_or_out_of_range_is_named_in_any_piece() {
        // Pieces of CHECK_CHUNK items are checked on all cores: the first offender is the one
        // named wherever it lies — first or last item of a piece, the pair across two pieces,
        // several in several pieces — as a sequential scan names it.
        let n = 3 * CHECK_CHUNK + 5;
        let edges = [0, 1, CHECK_CHUNK - 1, CHECK_CHUNK, 2 * CHECK_CHUNK + 7, n - 2, n - 1];
        for &bad in &edges {
            for &also in &[None, Some(n - 1), Some(CHECK_CHUNK + 3)] {
                let mut cells: Vec<u64> = (0..n as u64).map(|c| 10 * c + 100).collect();
                let mut flags = vec![false; n];
                for i in std::iter::once(bad).chain(also) {
                    cells[i] = if i == 0 { u64::MAX } else { cells[i - 1] };
                    flags[i] = true;
                }
                let want_pair = cells.windows(2).position(|w| w[0] >= w[1]);
                let got = sorted(&cells, |c| *c, 0).err();
                let want = want_pair.map(|i| {
                    format!(
                        "byte {}: cell {:#x} is not after the one before it",
                        8 * (i + 1),
                        cells[i + 1]
                    )
                });
                assert_eq!(got, want, "bad {bad}, also {also:?}");
                assert_eq!(first_where(&flags, |f| *f), flags.iter().position(|f| *f), "bad {bad}");
            }
        }
        assert_eq!(sorted::<u64>(&[], |c| *c, 0), Ok(()));
        assert_eq!(sorted(&[5u64], |c| *c, 0), Ok(()));
        assert_eq!(first_where::<bool>(&[], |f| *f), None);
    }

    #[test]
    fn rule_every_cut_or_extended_file_is_an_error_not_a_panic() {
        let bytes = encode(&sample());
        for len in 0..bytes.len() {
            let e = decode(&bytes[..len], &ids()).unwrap_err();
            assert!(e.starts_with("byte "), "{len}: {e}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer, &ids()).unwrap_err().contains("after the last area"));
    }

    #[test]
    fn rule_a_region_index_past_the_regions_unsorted_regions_or_other_bounties_are_refused() {
        let mut p = sample();
        p.regions.pop();
        let e = decode(&encode(&p), &ids()).unwrap_err();
        // The first cell pointing past the two regions is the third one (index 2).
        let at = 8 + 8 + (16 + 7) + (16 + 8) + 8 + 8 * 1000 + 4 * 2;
        assert_eq!(e, format!("byte {at}: region index 2 of 2 regions"));
        let mut p = sample();
        p.regions.swap(0, 1);
        assert!(decode(&encode(&p), &ids())
            .unwrap_err()
            .contains("\"harbour\" is not after the one before it"));
        p.regions[0] = p.regions[1].clone();
        assert!(decode(&encode(&p), &ids())
            .unwrap_err()
            .contains("is not after the one before it"));
        let mut p = sample();
        p.regions[1].name = "\u{fffd}".into();
        let mut bytes = encode(&p);
        let at = 8 + 8 + (16 + 7) + 16;
        bytes[at..at + 3].copy_from_slice(&[0xff, 0xfe, 0xfd]);
        assert!(decode(&bytes, &ids())
            .unwrap_err()
            .contains("region name: invalid utf-8"));
        let bytes = encode(&sample());
        // Every list's cells strictly increasing (the lookups search them).
        let mut p = sample();
        p.region_cells.swap(4, 5);
        let at = 8 + 8 + (16 + 7) + (16 + 8) + (16 + 4) + 8 + 8 * 5;
        let e = decode(&encode(&p), &ids()).unwrap_err();
        assert_eq!(
            e,
            format!(
                "byte {at}: cell {:#x} is not after the one before it",
                p.region_cells[5].0
            )
        );
        let mut p = sample();
        p.roads.as_mut().unwrap()[7] = p.roads.as_ref().unwrap()[6];
        assert!(decode(&encode(&p), &ids())
            .unwrap_err()
            .contains("is not after the one before it"));
        let mut p = sample();
        p.bounties[0].cells = vec![1, 3, 2];
        assert!(decode(&encode(&p), &ids())
            .unwrap_err()
            .contains("cell 0x2 is not after"));
        assert!(decode(&bytes, &["a".into()])
            .unwrap_err()
            .contains("2 bounty areas, the policy has 1"));
        let mut magic = bytes;
        magic[7] = b'2';
        assert!(decode(&magic, &ids())
            .unwrap_err()
            .contains("not a tessera places cell file"));
    }

    proptest! {
        #[test]
        fn rule_any_bytes_decode_or_give_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..200), head in any::<bool>()) {
            let mut b = bytes;
            if head {
                let mut h = MAGIC.to_vec();
                h.extend_from_slice(&b);
                b = h;
            }
            let _ = decode(&b, &ids());
        }
    }
}
