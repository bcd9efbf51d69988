//! From an MP4 index (or a raw GPMF payload) to fixes, IMU samples and the accounting: sample
//! times, the clock, the first device's streams, rejections at byte offsets.

use super::gpmf::{self, GpsPoint};
use super::mp4::{self, Index, SampleRef, Track};
use super::{blackvue, camm, ImuSample, Sensor, Telemetry};
use crate::fix::Fix;
use crate::ingest::receipt::{self, Receipt};
use crate::ingest::Parsed;
use crate::report::{Reason, Rejection};
use std::io::{Read, Seek, SeekFrom};

/// Largest telemetry sample read into memory (a GPMF payload is ~5–25 KB, a CAMM packet 64 B).
pub const MAX_SAMPLE_BYTES: u32 = 16 << 20;

/// The output being built: the parsed source plus the running sample ordinal.
struct Out<'r> {
    p: Parsed,
    line: u32,
    receipt: Option<&'r Receipt>,
}

impl<'r> Out<'r> {
    fn new(receipt: Option<&'r Receipt>) -> Self {
        Out {
            p: Parsed::default(),
            line: 0,
            receipt,
        }
    }

    /// The next sample's ordinal, counted in `total`.
    fn next(&mut self) -> u32 {
        self.line = self.line.saturating_add(1);
        self.p.lines.total += 1;
        self.line
    }

    fn reject(&mut self, reason: Reason, detail: String, time_ms: Option<i64>, pos: Option<(f64, f64)>) {
        let line = self.next();
        self.p.lines.rejected += 1;
        self.p.rejections.push(Rejection {
            line,
            reason,
            detail,
            time_ms,
            lat: pos.map(|p| p.0),
            lon: pos.map(|p| p.1),
        });
    }

    fn ignore(&mut self, kind: &str, n: u64) {
        for _ in 0..n {
            self.next();
        }
        self.p.lines.ignored += n;
        *self.p.lines.ignored_types.entry(kind.to_string()).or_default() += n;
    }

    /// An IMU reading, held to the same receipt rules as the fixes on its clock (a reading after
    /// the receipt or older than the policy's age is rejected with the same reason).
    fn imu(&mut self, sensor: Sensor, time_us: i64, v: [f64; 3]) {
        let ms = time_us.div_euclid(1000);
        let time_us = match receipt::judge(ms, None, self.receipt) {
            receipt::Judgement::Keep(t, _) => time_us + (t - ms) * 1000,
            receipt::Judgement::Reject(reason, detail) => {
                return self.reject(reason, format!("{} sample: {detail}", sensor.as_str()), Some(ms), None)
            }
        };
        let line = self.next();
        self.p.lines.imu += 1;
        self.p.imu.push(ImuSample {
            time_us,
            sensor,
            xyz: v.map(|x| x as f32),
            line,
        });
    }

    /// A candidate fix: checked (position, fix, receipt) and accepted or rejected.
    fn fix(&mut self, mut f: Fix, no_fix: bool, at: &str) {
        let pos = Some((f.lat, f.lon));
        if no_fix {
            return self.reject(
                Reason::NoFix,
                format!("{at}: receiver reports no fix"),
                Some(f.time_ms),
                pos,
            );
        }
        if !(f.lat.is_finite() && f.lon.is_finite()) || f.lat.abs() > 90.0 || f.lon.abs() > 180.0 {
            return self.reject(
                Reason::BadPosition,
                format!("{at}: position {} {} out of range", f.lat, f.lon),
                Some(f.time_ms),
                None,
            );
        }
        match receipt::settle(f.time_ms, None, self.receipt, &mut self.p.lines) {
            Ok(t) => {
                f.time_ms = t;
                f.line = self.next();
                self.p.lines.fix += 1;
                self.p.fixes.push(f);
            }
            Err((reason, detail)) => self.reject(reason, format!("{at}: {detail}"), Some(f.time_ms), pos),
        }
    }

    /// A fix at `utc_s` (UTC seconds), or — without a clock — a `no_time` rejection naming `at`.
    fn timed(&mut self, utc_s: Option<f64>, lat: f64, lon: f64, at: &str) -> Option<Fix> {
        match utc_s {
            Some(t) => Some(Fix::new((t * 1000.0).round() as i64, lat, lon)),
            None => {
                let detail = format!("{at}: no GPS time in the file and no container creation time");
                self.reject(Reason::NoTime, detail, None, Some((lat, lon)));
                None
            }
        }
    }

    fn bad_file(mut self, detail: String) -> Parsed {
        self.reject(Reason::BadFile, detail, None, None);
        self.p
    }
}

/// Parse a raw GPMF payload (a `.raw`/`.gpmf` file as gpmf-parser's samples ship): one payload
/// read as one MP4 sample of 1.0 s starting at 0 (mapillary-tools' convention for a payload
/// without its track), so times come only from `GPS9`/`GPSU`.
///
/// ```
/// let p = tessera::ingest::telemetry::parse_gpmf_payload(b"DEVC\x00\x01\x00\x00", None);
/// assert_eq!((p.fixes.len(), p.lines.total), (0, 0));
/// assert_eq!(p.telemetry.unwrap().container, "gpmf");
/// ```
pub fn parse_gpmf_payload(bytes: &[u8], receipt: Option<&Receipt>) -> Parsed {
    let mut out = Out::new(receipt);
    let payloads = vec![(0.0, 1.0, 0u64, gpmf::decode(bytes))];
    gpmf_samples(&mut out, payloads, None, "gpmf");
    out.p
}

/// Parse an MP4 (GoPro `gpmd` track, `camm` track, or BlackVue `free` box) read through `r`,
/// seeking to the telemetry samples only.
///
/// A file that is not an MP4, or holds no telemetry, is one `bad_file` rejection (so
/// [`crate::ingest::not_a_trace`] refuses it); a cut or corrupt box, sample or payload is a
/// rejection naming its byte offset, never a panic.
///
/// ```
/// let p = tessera::ingest::telemetry::parse_mp4(&mut std::io::Cursor::new(b"\0\0\0\x08ftyp"), None);
/// assert_eq!(p.rejections[0].detail, "MP4: no moov box (truncated?)");
/// ```
pub fn parse_mp4<R: Read + Seek>(r: &mut R, receipt: Option<&Receipt>) -> Parsed {
    let out = Out::new(receipt);
    let index = match mp4::index(r) {
        Ok(i) => i,
        Err(e) => return out.bad_file(format!("MP4: {e}")),
    };
    if let Some(t) = index.tracks.iter().find(|t| &t.format == b"gpmd") {
        return gpmf_track(out, r, &index, t);
    }
    if let Some(t) = index.tracks.iter().find(|t| &t.format == b"camm") {
        return camm_track(out, r, &index, t);
    }
    let mut out = out;
    for free in &index.free {
        if blackvue_boxes(&mut out, r, &index, *free) {
            return out.p;
        }
    }
    let kinds: Vec<String> = index
        .tracks
        .iter()
        .map(|t| String::from_utf8_lossy(&t.format).into_owned())
        .collect();
    out.bad_file(format!(
        "MP4 with no telemetry: no gpmd or camm track, no BlackVue free box (tracks: {})",
        if kinds.is_empty() {
            "none".to_string()
        } else {
            kinds.join(", ")
        }
    ))
}

/// Read one sample's bytes.
fn read_sample<R: Read + Seek>(r: &mut R, s: &SampleRef) -> Result<Vec<u8>, String> {
    if s.size > MAX_SAMPLE_BYTES {
        return Err(format!(
            "sample of {} bytes at byte {} (telemetry samples are at most {MAX_SAMPLE_BYTES})",
            s.size, s.offset
        ));
    }
    let mut buf = vec![0; s.size as usize];
    r.seek(SeekFrom::Start(s.offset))
        .and_then(|_| r.read_exact(&mut buf))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => format!(
                "sample of {} bytes at byte {} runs past the end of the file (truncated?); the readings in it cannot be counted",
                s.size, s.offset
            ),
            _ => format!("sample of {} bytes at byte {}: {e}", s.size, s.offset),
        })?;
    Ok(buf)
}

fn seconds(t: &Track, ticks: u64) -> f64 {
    ticks as f64 / f64::from(t.timescale.max(1))
}

fn gpmf_track<R: Read + Seek>(mut out: Out<'_>, r: &mut R, index: &Index, t: &Track) -> Parsed {
    let mut payloads = Vec::with_capacity(t.samples.len());
    for s in &t.samples {
        match read_sample(r, s) {
            Ok(b) => payloads.push((
                t.shift_s + seconds(t, s.dts),
                seconds(t, u64::from(s.duration)),
                s.offset,
                gpmf::decode(&b),
            )),
            Err(e) => out.reject(Reason::Truncated, format!("gpmd {e}"), None, None),
        }
    }
    gpmf_samples(&mut out, payloads, index.creation_unix_s, "mp4");
    out.p
}

/// A GPMF payload with its sample time (s), duration (s) and file offset.
type Timed = (f64, f64, u64, gpmf::Payload);

/// Turn decoded payloads into fixes and IMU samples: the first device (in file order) that has
/// GPS gives the fixes, likewise per IMU sensor; everything else is counted.
fn gpmf_samples(out: &mut Out<'_>, payloads: Vec<Timed>, creation: Option<i64>, container: &str) {
    let first = |f: &dyn Fn(&gpmf::Payload) -> Option<u64>| payloads.iter().find_map(|p| f(&p.3));
    let gps_dev = first(&|p| p.gps.iter().find(|r| !r.samples.is_empty()).map(|r| r.device));
    let imu_dev = |s: Sensor| {
        first(&|p| {
            p.imu
                .iter()
                .find(|(x, r)| *x == s && !r.samples.is_empty())
                .map(|(_, r)| r.device)
        })
    };
    let imu_devs = [Sensor::Accel, Sensor::Gyro, Sensor::Mag].map(|s| (s, imu_dev(s)));
    // The GPS clock: UTC − sample time of the first point with a GPS time in each payload
    // (GPSU is one time per ~1 s payload, and a camera's first is often stale); the file's
    // clock is their median, so times keep the camera's monotonic sample clock.
    let mut offsets: Vec<f64> = payloads
        .iter()
        .filter_map(|(t0, dur, _, p)| {
            let run = p.gps.iter().find(|r| Some(r.device) == gps_dev)?;
            let n = run.samples.len() as f64;
            run.samples
                .iter()
                .enumerate()
                .find_map(|(i, g)| Some(g.epoch_s? - (t0 + dur * i as f64 / n)))
        })
        .collect();
    let gps_offset = median(&mut offsets);
    let clock = if gps_offset.is_some() {
        "gps"
    } else if creation.is_some() {
        "container"
    } else {
        "none"
    };
    let offset = gps_offset.or(creation.map(|c| c as f64));
    let mut model = None;
    for (t0, dur, base, p) in &payloads {
        model = model.or_else(|| p.names.values().next().cloned());
        for b in &p.bad {
            for _ in 0..b.samples {
                out.reject(
                    Reason::Unparseable,
                    format!("GPMF at byte {}: {}", base + b.offset as u64, b.detail),
                    None,
                    None,
                );
            }
        }
        for (k, n) in &p.ignored {
            out.ignore(k, *n);
        }
        for run in &p.gps {
            if Some(run.device) != gps_dev {
                out.ignore("gpmf:GPS (other device)", run.samples.len() as u64);
                continue;
            }
            let n = run.samples.len() as f64;
            for (i, g) in run.samples.iter().enumerate() {
                let rel = t0 + dur * i as f64 / n;
                gps_fix(out, g, offset.map(|o| rel + o), base + run.offset as u64);
            }
        }
        for (s, run) in &p.imu {
            if imu_devs.iter().any(|(x, d)| x == s && *d != Some(run.device)) {
                out.ignore(&format!("gpmf:{} (other device)", s.as_str()), run.samples.len() as u64);
                continue;
            }
            let n = run.samples.len() as f64;
            for (i, v) in run.samples.iter().enumerate() {
                let rel = t0 + dur * i as f64 / n;
                match offset {
                    Some(o) => out.imu(*s, ((rel + o) * 1e6).round() as i64, *v),
                    None => out.reject(Reason::NoTime, no_clock(*s, base + run.offset as u64), None, None),
                }
            }
        }
    }
    out.p.telemetry = Some(Telemetry {
        kind: "gpmf".into(),
        container: container.into(),
        clock: clock.into(),
        axes: super::AXES_GPMF.into(),
        model,
    });
}

fn no_clock(s: Sensor, at: u64) -> String {
    format!(
        "{} sample at byte {at}: no GPS time in the file and no container creation time",
        s.as_str()
    )
}

/// The median (the lower of the two middle values for an even count), `None` when empty.
fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len().saturating_sub(1) / 2).copied()
}

fn gps_fix(out: &mut Out<'_>, g: &GpsPoint, utc_s: Option<f64>, at: u64) {
    let here = format!("GPS sample at byte {at}");
    let Some(mut f) = out.timed(utc_s, g.lat, g.lon, &here) else {
        return;
    };
    f.alt_m = Some(g.alt as f32);
    f.speed_mps = Some(g.speed_2d as f32);
    f.hdop = g.precision.map(|p| (p / 100.0) as f32);
    f.talker = *b"GF";
    out.fix(f, g.fix == Some(0), &here);
}

fn camm_track<R: Read + Seek>(mut out: Out<'_>, r: &mut R, index: &Index, t: &Track) -> Parsed {
    // Pass 1: decode every packet (64 bytes each: the whole track fits in memory).
    let mut packets = Vec::with_capacity(t.samples.len());
    for s in &t.samples {
        let rel = t.shift_s + seconds(t, s.dts);
        let p = match read_sample(r, s) {
            Ok(b) => camm::decode(&b).map_err(|e| (Reason::Unparseable, e)),
            Err(e) => Err((Reason::Truncated, e)),
        };
        packets.push((rel, s.offset, p));
    }
    // The clock: the first case-6 time, read as GPS time (the spec) or as Unix time (what
    // mapillary-tools writes), whichever is nearer the container's creation time, else the
    // receipt, else GPS time.
    let reference = index
        .creation_unix_s
        .map(|c| c as f64)
        .or(out.receipt.map(|r| r.received_at_ms as f64 / 1000.0));
    let first6 = packets.iter().find_map(|(rel, _, p)| match p {
        Ok(camm::Packet::Gps(g)) if g.time_gps_s > 0.0 => Some((*rel, g.time_gps_s)),
        _ => None,
    });
    let unix = match (first6, reference) {
        (Some((_, g)), Some(r)) => (g - r).abs() < (gps_to_unix_s(g) - r).abs(),
        _ => false,
    };
    let to_utc = |g: f64| if unix { g } else { gps_to_unix_s(g) };
    // As for GPMF: the file's clock is the median of (case-6 time − sample time), and every
    // sample's time is its sample time on that clock (a writer that stamps a whole batch with
    // one time — mapillary-tools does — still gives increasing fixes).
    let mut offsets: Vec<f64> = packets
        .iter()
        .filter_map(|(rel, _, p)| match p {
            Ok(camm::Packet::Gps(g)) if g.time_gps_s > 0.0 => Some(to_utc(g.time_gps_s) - rel),
            _ => None,
        })
        .collect();
    let offset = median(&mut offsets).or(index.creation_unix_s.map(|c| c as f64));
    let clock = match (first6, unix) {
        (Some(_), true) => "camm_unix",
        (Some(_), false) => "gps",
        (None, _) if offset.is_some() => "container",
        _ => "none",
    };
    for (rel, at, p) in packets {
        camm_packet(&mut out, rel, at, p, offset);
    }
    out.p.telemetry = Some(Telemetry {
        kind: "camm".into(),
        container: "mp4".into(),
        clock: clock.into(),
        axes: super::AXES_CAMM.into(),
        model: index.model.clone(),
    });
    out.p
}

fn gps_to_unix_s(g: f64) -> f64 {
    super::gps_to_unix_us(g) as f64 / 1e6
}

fn camm_packet(out: &mut Out<'_>, rel: f64, at: u64, p: Result<camm::Packet, (Reason, String)>, offset: Option<f64>) {
    let here = format!("CAMM sample at byte {at}");
    let p = match p {
        Ok(p) => p,
        Err((reason, e)) => return out.reject(reason, format!("{here}: {e}"), None, None),
    };
    let utc = offset.map(|o| rel + o);
    match p {
        camm::Packet::Imu(s, v) => match utc {
            Some(t) => out.imu(s, (t * 1e6).round() as i64, v.map(f64::from)),
            None => out.reject(Reason::NoTime, no_clock(s, at), None, None),
        },
        camm::Packet::Other(c) => out.ignore(&format!("camm:{c}"), 1),
        camm::Packet::Position { lat, lon, alt } => {
            let Some(mut f) = out.timed(utc, lat, lon, &here) else {
                return;
            };
            f.alt_m = Some(alt as f32);
            f.talker = *b"CM";
            out.fix(f, false, &here);
        }
        camm::Packet::Gps(g) => {
            let Some(mut f) = out.timed(utc, g.lat, g.lon, &here) else {
                return;
            };
            f.alt_m = Some(g.alt);
            let (ve, vn) = (f64::from(g.vel[0]), f64::from(g.vel[1]));
            f.hdop = (g.h_acc.is_finite() && g.h_acc > 0.0).then(|| g.h_acc / 5.0);
            let speed = ve.hypot(vn);
            // A writer that fills neither accuracies nor velocities (mapillary-tools writes 0.0
            // for all of them) has not measured a standstill: unknown speed, as unknown HDOP.
            let unmeasured = g.vel == [0.0; 3] && f.hdop.is_none();
            f.speed_mps = (!unmeasured).then_some(speed as f32);
            f.course_deg = (speed > 0.0).then(|| (ve.atan2(vn).to_degrees().rem_euclid(360.0)) as f32);
            f.talker = *b"CM";
            out.fix(f, g.fix_type == 0, &here);
        }
    }
}

/// A BlackVue `free` box (with `gps ` or `3gf ` children) read into `out`'s fixes and IMU
/// samples; `false` (nothing read) when this `free` box is not one (padding, another vendor's).
fn blackvue_boxes<R: Read + Seek>(out: &mut Out<'_>, r: &mut R, index: &Index, free: (u64, u64)) -> bool {
    let (at, len) = free;
    if len > u64::from(MAX_SAMPLE_BYTES) {
        return false;
    }
    let s = SampleRef {
        offset: at,
        size: len as u32,
        dts: 0,
        duration: 0,
    };
    let data = match read_sample(r, &s) {
        Ok(d) => d,
        Err(e) => {
            out.reject(Reason::BadFile, format!("BlackVue free box: {e}"), None, None);
            return true;
        }
    };
    let boxes = blackvue::children(&data);
    if boxes.gps.is_none() && boxes.accel.is_none() {
        return false;
    }
    let mut first_frame = None;
    if let Some((gps, _)) = boxes.gps {
        let p = crate::ingest::nmea::parse_with(gps, out.receipt);
        first_frame = blackvue_first_frame(gps);
        out.line = u32::try_from(p.lines.total).unwrap_or(u32::MAX);
        out.p = p;
    }
    let clock_base = index.creation_unix_s.map(|c| c * 1000).or(first_frame);
    if let Some((acc, off)) = boxes.accel {
        let (recs, rest) = blackvue::records(acc);
        for rec in recs {
            match clock_base {
                Some(b) => out.imu(
                    Sensor::Accel,
                    (b + i64::from(rec.ms)) * 1000,
                    rec.counts.map(blackvue::to_mps2),
                ),
                None => out.reject(Reason::NoTime, no_clock(Sensor::Accel, at + off as u64), None, None),
            }
        }
        if rest > 0 {
            out.reject(
                Reason::Truncated,
                format!(
                    "3gf record cut to {rest} bytes at the end of the box at byte {}",
                    at + off as u64
                ),
                None,
                None,
            );
        }
    }
    if let Some((o, e)) = &boxes.error {
        out.reject(
            Reason::Truncated,
            format!("BlackVue free box at byte {}: {e}", at + *o as u64),
            None,
            None,
        );
    }
    out.p.telemetry = Some(Telemetry {
        kind: "blackvue".into(),
        container: "mp4".into(),
        clock: if index.creation_unix_s.is_some() {
            "gps+container"
        } else {
            "gps"
        }
        .into(),
        axes: super::AXES_BLACKVUE.into(),
        model: index.model.clone(),
    });
    true
}

/// The `[ms]` frame time of the first line of a BlackVue `gps ` box.
fn blackvue_first_frame(gps: &[u8]) -> Option<i64> {
    let line = gps.split(|&b| b == b'\n').find(|l| l.starts_with(b"["))?;
    let end = line.iter().position(|&b| b == b']')?;
    std::str::from_utf8(&line[1..end]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_the_clock_is_the_median_offset_so_a_stale_first_gpsu_does_not_shift_it() {
        // GoPro MAX: the first payload's GPSU is 1.47 s behind the others.
        let mut v = [714.0, 715.469, 715.458, 715.447, 715.436];
        assert_eq!(median(&mut v), Some(715.447));
        assert_eq!(median(&mut [2.0, 1.0]), Some(1.0));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn rule_a_raw_payload_without_gps_time_rejects_its_imu_as_no_time() {
        // One device, one ACCL sample, no GPS: nothing gives the sample a UTC time.
        let accl =
            b"STRM\x00\x01\x00\x1cSCALs\x02\x00\x01\x00\x01\x00\x00ACCLs\x06\x00\x01\x00\x01\x00\x02\x00\x03\x00\x00";
        let mut devc = b"DEVC\x00\x01".to_vec();
        devc.extend((accl.len() as u16).to_be_bytes());
        devc.extend(accl);
        let p = parse_gpmf_payload(&devc, None);
        assert_eq!((p.imu.len(), p.rejections.len()), (0, 1));
        assert_eq!(p.rejections[0].reason, Reason::NoTime);
        assert!(p.lines.balanced());
    }
}
