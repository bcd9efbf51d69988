//! Stage 1, sources: select the sources overlapping the epoch window and, a chunk at a time in
//! parallel, read each one's fixes, apply the fix gates and trace checks, and cover the accepted
//! segments with H3 cells; rejections stream to `rejections.parquet`, visits into the store.

use super::outputs::{finish_sink, pq_error, sink};
use super::visits::VisitStore;
use super::{EpochInputs, Progress};
use crate::cells::{cover_segment, VisitMap};
use crate::epoch::Epoch;
use crate::fix::Fix;
use crate::lake::{Lake, Result, SourceMeta};
use crate::manifest;
use crate::report::{Reason, Rejection};
use crate::tables::{self, RejectionRow};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// The lake's sources with fixes inside the epoch window (of `only`, when given), in hash order.
pub(super) fn select(lake: &Lake, e: &Epoch, only: Option<&BTreeSet<String>>) -> Result<Vec<SourceMeta>> {
    let (start, end) = (e.start_ms(), e.end_ms());
    Ok(lake
        .sources()?
        .into_iter()
        .filter(|m| matches!((m.min_time_ms, m.max_time_ms), (Some(a), Some(b)) if a < end && b >= start))
        .filter(|m| only.is_none_or(|o| o.contains(&m.hash)))
        .collect())
}

/// The devices of the selected sources, in name order (a device's index is its position).
pub(super) fn devices(selected: &[SourceMeta]) -> Vec<String> {
    let set: BTreeSet<&str> = selected.iter().map(|m| m.device.as_str()).collect();
    set.into_iter().map(str::to_string).collect()
}

/// What covering every source gave, besides the visits in the store.
pub(super) struct Covered {
    pub store: VisitStore,
    pub fixes_in: u64,
    pub accepted: u64,
    pub rejected: BTreeMap<String, u64>,
    pub inputs: Vec<manifest::Input>,
    pub rejections_sha: String,
    /// Per selected source (same order): its trust findings and traces (empty with trust off).
    pub trust: Vec<super::trust::SourceTrust>,
}

/// Clean and cover every selected source into a visit store (spilling to `dir/.spill` past the
/// lake's budget); rejections stream into `dir/rejections.parquet`. Sources are processed a chunk at a time (in parallel within the
/// chunk) and folded in hash order, so memory holds the visits plus one chunk of sources.
pub(super) fn cover_all(
    lake: &Lake,
    selected: &[SourceMeta],
    devices: &[String],
    inputs: &EpochInputs,
    k: &crate::policy::Kernels,
    dir: &Path,
    progress: Progress,
) -> Result<Covered> {
    let device_idx: HashMap<&str, u32> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| (d.as_str(), i as u32))
        .collect();
    let done = AtomicU64::new(0);
    let total = selected.len() as u64;
    progress("clean + cover", 0, total);
    let chunk = (rayon::current_num_threads() * 4).max(8);
    let mut fold = SourceFold::new(dir)?;
    let mut store = VisitStore {
        map: VisitMap::default(),
        max: lake.max_visits(),
        spill: None,
        dir: dir.join(super::SPILL_DIR),
    };
    for group in selected.chunks(chunk) {
        let results: Vec<SourceResult> = group
            .par_iter()
            .map(|m| {
                let r = process_source(lake, m, device_idx[m.device.as_str()], inputs, k);
                progress("clean + cover", done.fetch_add(1, Ordering::Relaxed) + 1, total);
                r
            })
            .collect::<Result<Vec<_>>>()?;
        for (m, r) in group.iter().zip(results) {
            store.add(r.visits)?;
            fold.add(m, r.part)?;
        }
    }
    fold.finish(dir, store)
}

/// Fold the sources' parts, in selection order, into the counts, the manifest's inputs,
/// `rejections.parquet` (streamed) and the trust stage's input.
pub(super) struct SourceFold {
    fixes_in: u64,
    accepted: u64,
    rejected: BTreeMap<String, u64>,
    inputs: Vec<manifest::Input>,
    rejections: super::outputs::Sink<RejectionRow, fn(&[RejectionRow]) -> arrow_array::RecordBatch>,
    trust: Vec<super::trust::SourceTrust>,
}

impl SourceFold {
    pub(super) fn new(dir: &Path) -> Result<SourceFold> {
        let build: fn(&[RejectionRow]) -> arrow_array::RecordBatch = tables::rejections_to_batch;
        Ok(SourceFold {
            fixes_in: 0,
            accepted: 0,
            rejected: BTreeMap::new(),
            inputs: Vec::new(),
            rejections: sink(dir, "rejections.parquet", &tables::rejections_schema(), build)?.with_empty_batch(),
            trust: Vec::new(),
        })
    }

    /// Add the next source (in selection order).
    pub(super) fn add(&mut self, m: &SourceMeta, r: SourcePart) -> Result<()> {
        self.fixes_in += r.fixes_in;
        self.accepted += r.accepted;
        for row in &r.rejections {
            *self.rejected.entry(row.rejection.reason.to_string()).or_default() += 1;
        }
        self.rejections
            .extend(r.rejections)
            .map_err(|e| pq_error("rejections.parquet", e))?;
        self.trust.push(r.trust);
        self.inputs.push(manifest::Input {
            source: m.hash.clone(),
            device: m.device.clone(),
            name: m.name.clone(),
            fixes_sha256: r.fixes_sha,
        });
        Ok(())
    }

    /// Close `rejections.parquet`; what was covered, with the visits in `store`.
    pub(super) fn finish(self, dir: &Path, store: VisitStore) -> Result<Covered> {
        Ok(Covered {
            store,
            fixes_in: self.fixes_in,
            accepted: self.accepted,
            rejected: self.rejected,
            inputs: self.inputs,
            rejections_sha: finish_sink(dir, "rejections.parquet", self.rejections)?,
            trust: self.trust,
        })
    }
}

/// One source's stage-1 result besides its visits: what the fold over the sources needs.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct SourcePart {
    pub fixes_sha: String,
    pub fixes_in: u64,
    pub accepted: u64,
    pub rejections: Vec<RejectionRow>,
    pub trust: super::trust::SourceTrust,
}

pub(super) struct SourceResult {
    pub part: SourcePart,
    pub visits: VisitMap,
}

fn stage_of(r: Reason) -> &'static str {
    match r {
        Reason::TimeBackwards | Reason::DuplicateTime | Reason::Teleport => "trace",
        Reason::UnregisteredDevice => "registry",
        _ => "quality",
    }
}

/// Camera telemetry: the IMU readings the trust rules hold against the track, in time order
/// (none without trust or without a camera).
fn source_imu(
    lake: &Lake,
    meta: &SourceMeta,
    k: &crate::policy::Kernels,
) -> Result<Vec<crate::ingest::telemetry::ImuSample>> {
    if k.trust.is_none() || meta.imu == 0 {
        return Ok(Vec::new());
    }
    let mut v = lake.read_imu(&meta.hash)?;
    v.sort_by_key(|s| (s.time_us, s.sensor, s.line));
    Ok(v)
}

pub(super) fn process_source(
    lake: &Lake,
    meta: &SourceMeta,
    device_idx: u32,
    inputs: &EpochInputs,
    k: &crate::policy::Kernels,
) -> Result<SourceResult> {
    let (fixes, fixes_sha) = lake.read_fixes(&meta.hash)?;
    let e = &inputs.epoch;
    let (start, end) = (e.start_ms(), e.end_ms());
    let fixes: Vec<Fix> = fixes
        .into_iter()
        .filter(|f| f.time_ms >= start && f.time_ms < end)
        .collect();
    let mut out = SourceResult {
        part: SourcePart {
            fixes_sha,
            fixes_in: fixes.len() as u64,
            ..SourcePart::default()
        },
        visits: VisitMap::default(),
    };
    let reject = |f: &Fix, reason: Reason, detail: String| RejectionRow {
        source: meta.hash.clone(),
        device: meta.device.clone(),
        stage: stage_of(reason),
        rejection: Rejection {
            line: f.line,
            reason,
            detail,
            time_ms: Some(f.time_ms),
            lat: Some(f.lat),
            lon: Some(f.lon),
        },
    };
    if inputs.registry.wallet(&meta.device).is_none() {
        out.part.rejections = fixes
            .iter()
            .map(|f| {
                reject(
                    f,
                    Reason::UnregisteredDevice,
                    format!("device {} is not in the registry", meta.device),
                )
            })
            .collect();
        return Ok(out);
    }
    let verdicts = crate::quality::clean(&fixes, k);
    if let Some(tk) = &k.trust {
        out.part.trust.teleport_runs(&fixes, &verdicts, tk);
    }
    let received = meta.received_at.as_deref().and_then(super::trust::parse_ms);
    let imu_withheld = whole_source_checks(lake, meta, &fixes, &verdicts, inputs, k, &mut out)?;
    let cover = |segment: &[&Fix], seg: u32, out: &mut SourceResult| match &k.trust {
        None => cover_segment(segment, device_idx, k.resolution, &mut out.visits),
        Some(tk) => {
            if imu_withheld {
                return; // the source's IMU contradicts its track: no segment covers a cell
            }
            let c = crate::trust::check_segment(segment, received, tk);
            let mut run: Vec<&Fix> = Vec::new();
            for r in &c.runs {
                run.clear();
                run.extend(r.iter().map(|&i| segment[i]));
                cover_segment(&run, device_idx, k.resolution, &mut out.visits);
            }
            out.part.trust.add(seg, c);
        }
    };
    let mut segment: Vec<&Fix> = Vec::new();
    let mut seg_id = None;
    for (f, v) in fixes.iter().zip(&verdicts) {
        match v {
            crate::quality::Verdict::Accepted(s) => {
                if seg_id != Some(*s) {
                    if let (Some(prev), Some(last)) = (seg_id, segment.last()) {
                        out.part.trust.clock_step(last.time_ms, f.time_ms, k.trust.as_ref());
                        cover(&segment, prev, &mut out);
                    }
                    segment.clear();
                    seg_id = Some(*s);
                }
                segment.push(f);
                out.part.accepted += 1;
            }
            crate::quality::Verdict::Rejected(r, d) => out.part.rejections.push(reject(f, *r, d.clone())),
        }
    }
    if let Some(seg) = seg_id {
        cover(&segment, seg, &mut out);
    }
    Ok(out)
}

/// The off-road detector over a source's accepted segments (trust on and a road network
/// configured; `None` otherwise).
fn off_road(
    fixes: &[Fix],
    verdicts: &[crate::quality::Verdict],
    inputs: &EpochInputs,
    k: &crate::policy::Kernels,
) -> Option<crate::trust::Finding> {
    let roads = inputs.places.roads.as_ref()?;
    let rk = k.off_road?;
    k.trust.as_ref()?;
    let mut segments: Vec<Vec<&Fix>> = Vec::new();
    let mut last = None;
    for (f, v) in fixes.iter().zip(verdicts) {
        if let crate::quality::Verdict::Accepted(s) = v {
            if last != Some(*s) {
                segments.push(Vec::new());
                last = Some(*s);
            }
            segments.last_mut().expect("pushed").push(f);
        }
    }
    let on_road = |lat: f64, lon: f64| {
        h3o::LatLng::new(lat, lon)
            .map(|p| {
                roads
                    .binary_search_by_key(&u64::from(p.to_cell(k.resolution)), |x| x.0)
                    .is_ok()
            })
            .unwrap_or(false)
    };
    crate::trust::roads::off_road(&segments, &on_road, &rk)
}

/// The trust rules over a source's whole accepted track, before its segments: the IMU of a
/// camera source against the track (a made-up track cannot dodge the rules by being cut into
/// short segments; true: withheld, no segment covers a cell), then the off-road share.
fn whole_source_checks(
    lake: &Lake,
    meta: &SourceMeta,
    fixes: &[Fix],
    verdicts: &[crate::quality::Verdict],
    inputs: &EpochInputs,
    k: &crate::policy::Kernels,
    out: &mut SourceResult,
) -> Result<bool> {
    let imu_withheld = match (&k.trust, source_imu(lake, meta, k)?) {
        (Some(tk), imu) if !imu.is_empty() => {
            let accepted: Vec<&Fix> = fixes
                .iter()
                .zip(verdicts)
                .filter(|(_, v)| matches!(v, crate::quality::Verdict::Accepted(_)))
                .map(|(f, _)| f)
                .collect();
            let found = crate::trust::imu::check_source(&accepted, &imu, tk);
            let withheld = !found.is_empty();
            out.part.trust.findings.extend(found);
            withheld
        }
        _ => false,
    };
    if !imu_withheld {
        if let Some(f) = off_road(fixes, verdicts, inputs, k) {
            out.part.trust.findings.push(f);
        }
    }
    Ok(imu_withheld)
}
