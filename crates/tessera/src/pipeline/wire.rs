//! How a staged run's intermediate results travel between processes (a Spark driver and its
//! workers, through the scratch directory): a source's part and the trust verdicts as JSON (floats
//! as their IEEE-754 bits, so nothing is rounded on the way), a scored range of cells as
//! fixed-width little-endian records. These are scratch files of one run, not a published format:
//! both ends are the same build.

use super::score::Part;
use crate::cells::Visit;
use crate::novelty::freshness::CellState;
use crate::novelty::{Scored, VisitRow};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeSet;
use std::sync::Mutex;

/// A `&'static str` read back: one leaked copy per distinct value (policy keys and stage names,
/// a few dozen at most).
fn intern(s: String) -> &'static str {
    static SEEN: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(k) = seen.get(s.as_str()) {
        return k;
    }
    let k: &'static str = Box::leak(s.into_boxed_str());
    seen.insert(k);
    k
}

/// [`crate::trust::Finding`] as read back (its policy key owned).
#[derive(Deserialize)]
pub(crate) struct FindingWire {
    detector: crate::trust::Detector,
    start_ms: i64,
    end_ms: i64,
    measured: String,
    threshold: String,
    policy_key: String,
    effect: crate::trust::Effect,
    fixes: u64,
    meters: u64,
    detail: String,
}

impl From<FindingWire> for crate::trust::Finding {
    fn from(w: FindingWire) -> Self {
        crate::trust::Finding {
            detector: w.detector,
            start_ms: w.start_ms,
            end_ms: w.end_ms,
            measured: w.measured,
            threshold: w.threshold,
            policy_key: intern(w.policy_key),
            effect: w.effect,
            fixes: w.fixes,
            meters: w.meters,
            detail: w.detail,
        }
    }
}

impl<'de> Deserialize<'de> for crate::trust::Finding {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        FindingWire::deserialize(d).map(Into::into)
    }
}

impl<'de> Deserialize<'de> for crate::tables::RejectionRow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RejectionRowWire::deserialize(d).map(Into::into)
    }
}

/// [`crate::tables::RejectionRow`] as read back (its stage owned).
#[derive(Deserialize)]
pub(crate) struct RejectionRowWire {
    source: String,
    device: String,
    stage: String,
    rejection: crate::report::Rejection,
}

impl From<RejectionRowWire> for crate::tables::RejectionRow {
    fn from(w: RejectionRowWire) -> Self {
        crate::tables::RejectionRow {
            source: w.source,
            device: w.device,
            stage: intern(w.stage),
            rejection: w.rejection,
        }
    }
}

/// `Option<f64>` as its bits.
pub(crate) mod opt_f64_bits {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        v.map(f64::to_bits).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(f64::from_bits))
    }
}

/// A trace's `(time, lat, lon)` points with the coordinates as their bits.
pub(crate) mod track_bits {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[(i64, f64, f64)], s: S) -> Result<S::Ok, S::Error> {
        let bits: Vec<(i64, u64, u64)> = v.iter().map(|p| (p.0, p.1.to_bits(), p.2.to_bits())).collect();
        bits.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(i64, f64, f64)>, D::Error> {
        let bits = Vec::<(i64, u64, u64)>::deserialize(d)?;
        Ok(bits
            .into_iter()
            .map(|p| (p.0, f64::from_bits(p.1), f64::from_bits(p.2)))
            .collect())
    }
}

const MAGIC: &[u8; 8] = b"TSPART01";
const SCORED: usize = 8 + 4 + 8 + 8 + 4 + 4 + 4 + 9 + 8 * 4 + 5 + 1 + 8 + 8;
const COVERAGE: usize = 8 + 8 + 8 + 4;

/// A scored range of cells → bytes.
pub(crate) fn encode_part(p: &Part) -> Vec<u8> {
    let mut b = Vec::with_capacity(40 + p.scored.len() * SCORED + p.coverage.len() * COVERAGE);
    b.extend_from_slice(MAGIC);
    for n in [p.visits, p.new_cells, p.scored.len() as u64, p.coverage.len() as u64] {
        b.extend_from_slice(&n.to_le_bytes());
    }
    for s in &p.scored {
        let v = &s.row.visit;
        b.extend_from_slice(&s.row.cell.to_le_bytes());
        b.extend_from_slice(&s.row.device.to_le_bytes());
        b.extend_from_slice(&v.first_ms.to_le_bytes());
        b.extend_from_slice(&v.last_ms.to_le_bytes());
        b.extend_from_slice(&v.fixes.to_le_bytes());
        b.extend_from_slice(&v.best_hdop_centi.to_le_bytes());
        b.extend_from_slice(&s.rank.to_le_bytes());
        b.push(u8::from(s.age.is_some()));
        b.extend_from_slice(&s.age.unwrap_or(0).to_le_bytes());
        for w in [s.rank_w, s.freshness_w, s.quality_w, s.region_w] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.push(u8::from(s.region.is_some()));
        b.extend_from_slice(&s.region.unwrap_or(0).to_le_bytes());
        b.push(match s.on_road {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        });
        b.extend_from_slice(&s.trust_w.to_le_bytes());
        b.extend_from_slice(&s.points.to_le_bytes());
    }
    for (cell, st) in &p.coverage {
        b.extend_from_slice(&cell.to_le_bytes());
        b.extend_from_slice(&st.first_epoch.to_le_bytes());
        b.extend_from_slice(&st.last_epoch.to_le_bytes());
        b.extend_from_slice(&st.times_covered.to_le_bytes());
    }
    b
}

/// Reads fixed-width fields, failing (never panicking) past the end.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let end = self.at + N;
        let s = self
            .b
            .get(self.at..end)
            .ok_or_else(|| format!("truncated at byte {}", self.at))?;
        self.at = end;
        Ok(s.try_into().expect("length checked"))
    }
    fn u64(&mut self) -> Result<u64, String> {
        self.take::<8>().map(u64::from_le_bytes)
    }
    fn i64(&mut self) -> Result<i64, String> {
        self.take::<8>().map(i64::from_le_bytes)
    }
    fn u32(&mut self) -> Result<u32, String> {
        self.take::<4>().map(u32::from_le_bytes)
    }
    fn u8(&mut self) -> Result<u8, String> {
        self.take::<1>().map(|x| x[0])
    }
}

/// Bytes → a scored range of cells.
///
/// # Errors
/// A message naming the byte offset where the bytes stop making sense.
pub(crate) fn decode_part(b: &[u8]) -> Result<Part, String> {
    let mut r = Reader { b, at: 0 };
    if r.take::<8>()? != *MAGIC {
        return Err("not a scored part (bad magic at byte 0)".into());
    }
    let (visits, new_cells, n_scored, n_cov) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
    let want = 40u64
        .checked_add(n_scored.saturating_mul(SCORED as u64))
        .and_then(|x| x.checked_add(n_cov.saturating_mul(COVERAGE as u64)));
    if want != Some(b.len() as u64) {
        return Err(format!(
            "{} bytes for {n_scored} scored rows and {n_cov} cells",
            b.len()
        ));
    }
    let mut scored = Vec::with_capacity(n_scored as usize);
    for _ in 0..n_scored {
        let row = VisitRow {
            cell: r.u64()?,
            device: r.u32()?,
            visit: Visit {
                first_ms: r.i64()?,
                last_ms: r.i64()?,
                fixes: r.u32()?,
                best_hdop_centi: r.u32()?,
            },
        };
        let rank = r.u32()?;
        let age = (r.u8()? == 1, r.i64()?);
        let (rank_w, freshness_w, quality_w, region_w) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
        let region = (r.u8()? == 1, r.u32()?);
        let at = r.at;
        let on_road = match r.u8()? {
            0 => None,
            1 => Some(false),
            2 => Some(true),
            x => return Err(format!("on_road {x} at byte {at}")),
        };
        scored.push(Scored {
            row,
            rank,
            age: age.0.then_some(age.1),
            rank_w,
            freshness_w,
            quality_w,
            region_w,
            region: region.0.then_some(region.1),
            on_road,
            trust_w: r.u64()?,
            points: r.u64()?,
        });
    }
    let mut coverage = Vec::with_capacity(n_cov as usize);
    for _ in 0..n_cov {
        let cell = r.u64()?;
        let st = CellState {
            first_epoch: r.i64()?,
            last_epoch: r.i64()?,
            times_covered: r.u32()?,
        };
        coverage.push((cell, st));
    }
    Ok(Part {
        scored,
        coverage,
        visits,
        new_cells,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(cell: u64, device: u32, age: Option<i64>, on_road: Option<bool>) -> Scored {
        Scored {
            row: VisitRow {
                cell,
                device,
                visit: Visit {
                    first_ms: -5,
                    last_ms: i64::MAX,
                    fixes: 3,
                    best_hdop_centi: 90,
                },
            },
            rank: 2,
            age,
            rank_w: 500_000,
            freshness_w: 1,
            quality_w: u64::MAX,
            region_w: 1_500_000,
            region: on_road.map(|_| 7),
            on_road,
            trust_w: 750_000,
            points: 123,
        }
    }

    #[test]
    fn rule_a_scored_part_survives_the_trip_bit_for_bit() {
        let st = CellState {
            first_epoch: 3,
            last_epoch: 9,
            times_covered: 4,
        };
        let p = Part {
            scored: vec![
                scored(1, 0, None, None),
                scored(2, 9, Some(0), Some(false)),
                scored(2, 10, Some(-1), Some(true)),
            ],
            coverage: vec![(1, st), (2, st)],
            visits: 3,
            new_cells: 1,
        };
        let b = encode_part(&p);
        assert_eq!(decode_part(&b).unwrap(), p);
        assert_eq!(decode_part(&encode_part(&Part::default())).unwrap(), Part::default());
    }

    #[test]
    fn rule_a_cut_or_corrupt_part_is_an_error_not_a_panic() {
        let p = Part {
            scored: vec![scored(1, 0, Some(2), Some(true))],
            ..Part::default()
        };
        let b = encode_part(&p);
        for cut in 0..b.len() {
            assert!(decode_part(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = b.clone();
        bad[40 + SCORED - 17] = 9; // on_road
        assert!(decode_part(&bad).unwrap_err().contains("on_road 9"));
        let mut huge = b;
        huge[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode_part(&huge).is_err());
    }

    #[test]
    fn rule_floats_in_json_keep_their_bits() {
        let t = crate::trust::Trace {
            start_ms: 1,
            end_ms: 2,
            track: vec![(1, 0.1 + 0.2, -179.999_999_999_999_97), (2, f64::MIN_POSITIVE, 5e-324)],
            anchors: vec![(u64::MAX, -1)],
            meters: 7,
        };
        let back: crate::trust::Trace = serde_json::from_slice(&serde_json::to_vec(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }
}
