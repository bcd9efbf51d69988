//! ISO base media file format (ISO/IEC 14496-12, MP4/QuickTime) index of the telemetry tracks:
//! the top-level boxes are walked by seeking (`mdat` is never read), `moov` is read (at most
//! [`MAX_MOOV_BYTES`]) and the sample tables (`stts`, `stsc`, `stsz`, `stco`/`co64`) of the
//! `gpmd` and `camm` tracks are expanded into sample offsets, sizes and times.
//!
//! Why not a crate: `re_mp4` 0.5.1 (which the tests use as a differential oracle) reads these
//! files correctly, but on a corrupt `moov` it panics (empty `stsc`, short `stts`, chunk
//! indices past `stco`), loops forever on a zero-size child box and aborts the process on a
//! forged `stsz` count — none acceptable for bytes uploaded by devices — and needs Rust 1.92.
//! This reader validates every count against the bytes present and is fuzzed
//! (`fuzz/fuzz_targets/mp4.rs`).

use std::io::{Read, Seek, SeekFrom};

/// Largest `moov` read into memory (an hour of 4K video has a `moov` of a few MB).
pub const MAX_MOOV_BYTES: u64 = 256 << 20;
/// Seconds between 1904-01-01 (the MP4 epoch) and 1970-01-01.
pub const MP4_EPOCH_UNIX_S: i64 = 2_082_844_800;

/// One sample of a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleRef {
    /// Absolute byte offset in the file.
    pub offset: u64,
    /// Bytes.
    pub size: u32,
    /// Decode time, in the track's timescale.
    pub dts: u64,
    /// Duration (`stts` delta), in the track's timescale.
    pub duration: u32,
}

/// A track: its first sample entry's format, handler, timescale and (for telemetry tracks)
/// samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    /// First `stsd` entry's format (`gpmd`, `camm`, `avc1`...).
    pub format: [u8; 4],
    /// `hdlr` handler type (`meta`, `camm`, `vide`...).
    pub handler: [u8; 4],
    /// `mdhd` timescale (ticks per second).
    pub timescale: u32,
    /// Samples (expanded only for `gpmd` and `camm` tracks).
    pub samples: Vec<SampleRef>,
    /// Seconds added to every sample time: the length of a leading empty edit (`elst`).
    pub shift_s: f64,
}

/// What tessera needs of an MP4.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Index {
    /// `mvhd` creation time, Unix seconds (`None` when absent or 0).
    pub creation_unix_s: Option<i64>,
    /// Tracks in file order.
    pub tracks: Vec<Track>,
    /// Top-level `free` boxes: (data offset, data length) — BlackVue's telemetry.
    pub free: Vec<(u64, u64)>,
    /// Camera model (`udta/@mod`), when present.
    pub model: Option<String>,
}

/// A box header read from a slice: type, data range.
#[derive(Debug, Clone, Copy)]
struct BoxAt {
    kind: [u8; 4],
    start: usize,
    end: usize,
}

/// The child boxes of `buf[from..to]`; `base` is the absolute offset of `buf[0]`, for errors.
fn children(buf: &[u8], from: usize, to: usize, base: u64) -> Result<Vec<BoxAt>, String> {
    let mut out = Vec::new();
    let mut at = from;
    while at + 8 <= to {
        let size32 = u32::from_be_bytes(buf[at..at + 4].try_into().expect("4"));
        let kind: [u8; 4] = buf[at + 4..at + 8].try_into().expect("4");
        let (header, size) = match size32 {
            0 => (8, (to - at) as u64),
            1 if at + 16 <= to => (16, u64::from_be_bytes(buf[at + 8..at + 16].try_into().expect("8"))),
            1 => {
                return Err(format!(
                    "box {} at byte {} cut in its 64-bit size",
                    name(&kind),
                    base + at as u64
                ))
            }
            n => (8, u64::from(n)),
        };
        if size < header as u64 || size > (to - at) as u64 {
            return Err(format!(
                "box {} at byte {} announces {size} bytes, {} left in its parent",
                name(&kind),
                base + at as u64,
                to - at
            ));
        }
        out.push(BoxAt {
            kind,
            start: at + header,
            end: at + size as usize,
        });
        at += size as usize;
    }
    Ok(out)
}

fn name(k: &[u8; 4]) -> String {
    super::fourcc(k)
}

fn find(boxes: &[BoxAt], kind: &[u8; 4]) -> Option<BoxAt> {
    boxes.iter().find(|b| &b.kind == kind).copied()
}

/// Big-endian reader over one box's data, failing (not panicking) past its end.
struct Cur<'a> {
    b: &'a [u8],
    at: usize,
    what: &'static str,
}

impl<'a> Cur<'a> {
    fn new(buf: &'a [u8], bx: BoxAt, what: &'static str) -> Self {
        Cur {
            b: &buf[bx.start..bx.end],
            at: 0,
            what,
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let s = self
            .b
            .get(self.at..self.at + n)
            .ok_or_else(|| format!("{} cut short", self.what))?;
        self.at += n;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8")))
    }
    /// A table of `n` entries of `width` bytes must fit in what is left.
    fn table(&mut self, width: usize) -> Result<usize, String> {
        let n = self.u32()? as usize;
        if n.saturating_mul(width) > self.b.len() - self.at {
            return Err(format!(
                "{} announces {n} entries, the box holds {}",
                self.what,
                (self.b.len() - self.at) / width
            ));
        }
        Ok(n)
    }
}

/// Index an MP4 read through `r` (seeks; reads the top-level headers, `moov` and nothing else).
///
/// # Errors
/// A sentence naming the box and byte offset: not an MP4, a box running past the end of the
/// file or of its parent, a `moov` missing or over [`MAX_MOOV_BYTES`], sample tables that do not
/// agree (more samples than `stts`/`stsc`/`stco` cover, offsets past the end of the file).
///
/// ```
/// use tessera::ingest::telemetry::mp4::index;
/// let err = index(&mut std::io::Cursor::new(b"hello world, not a video")).unwrap_err();
/// assert!(err.contains("not an MP4"));
/// ```
pub fn index<R: Read + Seek>(r: &mut R) -> Result<Index, String> {
    let len = r.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
    let mut at = 0u64;
    let mut moov = None;
    let mut free = Vec::new();
    let mut first = true;
    while at + 8 <= len {
        let mut h = [0u8; 16];
        r.seek(SeekFrom::Start(at))
            .and_then(|_| r.read_exact(&mut h[..8]))
            .map_err(|e| format!("box header at byte {at}: {e}"))?;
        let kind: [u8; 4] = h[4..8].try_into().expect("4");
        if first && !(kind.iter().all(|b| b.is_ascii_alphanumeric() || *b == b' ') && is_top_level(&kind)) {
            return Err(format!("not an MP4: the first box type is {:?}", name(&kind)));
        }
        first = false;
        let (header, size) = match u32::from_be_bytes(h[..4].try_into().expect("4")) {
            0 => (8, len - at),
            1 => {
                r.read_exact(&mut h[8..16])
                    .map_err(|e| format!("64-bit box size at byte {at}: {e}"))?;
                (16, u64::from_be_bytes(h[8..16].try_into().expect("8")))
            }
            n => (8, u64::from(n)),
        };
        if size < header {
            return Err(format!(
                "box {} at byte {at} announces {size} bytes, less than its header",
                name(&kind)
            ));
        }
        if at + size > len {
            // A cut `mdat` (or trailing box) is tolerated once `moov` is read: the samples
            // past the end are reported one by one when they cannot be read.
            if moov.is_some() && &kind != b"moov" {
                break;
            }
            return Err(format!(
                "box {} at byte {at} announces {size} bytes, the file has {} after it (truncated?)",
                name(&kind),
                len - at
            ));
        }
        match &kind {
            b"moov" if moov.is_none() => moov = Some((at + header, size - header)),
            b"free" => free.push((at + header, size - header)),
            _ => {}
        }
        at += size;
    }
    let Some((start, mlen)) = moov else {
        return Err(if at == 0 {
            "not an MP4: shorter than a box header".into()
        } else {
            "no moov box (truncated?)".into()
        });
    };
    if mlen > MAX_MOOV_BYTES {
        return Err(format!(
            "moov of {mlen} bytes at byte {start} (at most {MAX_MOOV_BYTES})"
        ));
    }
    let mut buf = vec![0u8; mlen as usize];
    r.seek(SeekFrom::Start(start))
        .and_then(|_| r.read_exact(&mut buf))
        .map_err(|e| format!("moov at byte {start}: {e}"))?;
    let mut idx = parse_moov(&buf, start, len)?;
    idx.free = free;
    Ok(idx)
}

fn is_top_level(k: &[u8; 4]) -> bool {
    matches!(
        k,
        b"ftyp" | b"moov" | b"free" | b"mdat" | b"skip" | b"wide" | b"uuid" | b"pnot" | b"styp" | b"sidx"
    )
}

fn parse_moov(buf: &[u8], base: u64, file_len: u64) -> Result<Index, String> {
    let top = children(buf, 0, buf.len(), base)?;
    let mut idx = Index::default();
    let mut movie_timescale = 1u32;
    if let Some(mvhd) = find(&top, b"mvhd") {
        let mut c = Cur::new(buf, mvhd, "mvhd");
        let version = c.take(4)?[0];
        let created = if version == 1 { c.u64()? } else { u64::from(c.u32()?) };
        if version == 1 {
            c.u64()?;
        } else {
            c.u32()?;
        }
        movie_timescale = c.u32()?;
        if movie_timescale == 0 {
            return Err(format!("mvhd at byte {}: timescale 0", base + mvhd.start as u64));
        }
        idx.creation_unix_s = (created > 0).then(|| created as i64 - MP4_EPOCH_UNIX_S);
    }
    if let Some(udta) = find(&top, b"udta") {
        let kids = children(buf, udta.start, udta.end, base)?;
        if let Some(m) = find(&kids, b"@mod") {
            let text: String = String::from_utf8_lossy(&buf[m.start..m.end])
                .chars()
                .filter(|c| !c.is_control())
                .collect();
            idx.model = Some(text.trim().to_string()).filter(|s| !s.is_empty());
        }
    }
    for trak in top.iter().filter(|b| &b.kind == b"trak") {
        idx.tracks
            .push(parse_trak(buf, *trak, base, file_len, movie_timescale)?);
    }
    Ok(idx)
}

fn parse_trak(buf: &[u8], trak: BoxAt, base: u64, file_len: u64, movie_timescale: u32) -> Result<Track, String> {
    let at = |b: BoxAt| base + b.start as u64;
    let need = |bs: &[BoxAt], k: &[u8; 4], parent: BoxAt| {
        find(bs, k).ok_or_else(|| format!("trak at byte {}: no {}", at(parent), name(k)))
    };
    let kids = children(buf, trak.start, trak.end, base)?;
    let mdia = need(&kids, b"mdia", trak)?;
    let mdia_kids = children(buf, mdia.start, mdia.end, base)?;
    let mdhd = need(&mdia_kids, b"mdhd", mdia)?;
    let mut c = Cur::new(buf, mdhd, "mdhd");
    let version = c.take(4)?[0];
    c.take(if version == 1 { 16 } else { 8 })?;
    let timescale = c.u32()?;
    if timescale == 0 {
        return Err(format!(
            "mdhd at byte {}: timescale 0 (no sample could be given a time)",
            at(mdhd)
        ));
    }
    let handler = match find(&mdia_kids, b"hdlr") {
        Some(h) => Cur::new(buf, h, "hdlr").take(12)?[8..12].try_into().expect("4"),
        None => *b"    ",
    };
    let minf = need(&mdia_kids, b"minf", mdia)?;
    let minf_kids = children(buf, minf.start, minf.end, base)?;
    let stbl = need(&minf_kids, b"stbl", minf)?;
    let st = children(buf, stbl.start, stbl.end, base)?;
    let stsd = need(&st, b"stsd", stbl)?;
    let mut c = Cur::new(buf, stsd, "stsd");
    c.take(8)?;
    let format: [u8; 4] = c.take(8)?[4..8].try_into().expect("4");
    let mut track = Track {
        format,
        handler,
        timescale,
        samples: Vec::new(),
        shift_s: 0.0,
    };
    if !matches!(&format, b"gpmd" | b"camm") {
        return Ok(track);
    }
    track.samples = samples(buf, &st, stbl, base, file_len)?;
    if let Some(edts) = find(&kids, b"edts") {
        track.shift_s = leading_empty_edit(buf, edts, base, movie_timescale)?;
    }
    Ok(track)
}

/// Seconds of a leading empty edit (`media_time` −1) in an `edts/elst`.
fn leading_empty_edit(buf: &[u8], edts: BoxAt, base: u64, movie_timescale: u32) -> Result<f64, String> {
    let Some(elst) = find(&children(buf, edts.start, edts.end, base)?, b"elst") else {
        return Ok(0.0);
    };
    let mut c = Cur::new(buf, elst, "elst");
    let version = c.take(4)?[0];
    let width = if version == 1 { 20 } else { 12 };
    if c.table(width)? == 0 {
        return Ok(0.0);
    }
    let (dur, media_time) = if version == 1 {
        (c.u64()?, c.u64()? as i64)
    } else {
        (u64::from(c.u32()?), i64::from(c.u32()? as i32))
    };
    Ok(if media_time == -1 {
        dur as f64 / f64::from(movie_timescale)
    } else {
        0.0
    })
}

/// Expand `stts`, `stsc`, `stsz`, `stco`/`co64` into samples, checking that they agree.
fn samples(buf: &[u8], st: &[BoxAt], stbl: BoxAt, base: u64, file_len: u64) -> Result<Vec<SampleRef>, String> {
    let need =
        |k: &[u8; 4]| find(st, k).ok_or_else(|| format!("stbl at byte {}: no {}", base + stbl.start as u64, name(k)));
    // Sizes.
    let mut c = Cur::new(buf, need(b"stsz")?, "stsz");
    c.take(4)?;
    let fixed = c.u32()?;
    let sizes: Vec<u32> = if fixed == 0 {
        let n = c.table(4)?;
        (0..n).map(|_| c.u32()).collect::<Result<_, _>>()?
    } else {
        let n = c.u32()? as u64;
        if n.saturating_mul(u64::from(fixed)) > file_len {
            return Err(format!(
                "stsz: {n} samples of {fixed} bytes do not fit in a {file_len}-byte file"
            ));
        }
        vec![fixed; n as usize]
    };
    // Chunk offsets.
    let chunks: Vec<u64> = if let Some(b) = find(st, b"stco") {
        let mut c = Cur::new(buf, b, "stco");
        c.take(4)?;
        let n = c.table(4)?;
        (0..n).map(|_| c.u32().map(u64::from)).collect::<Result<_, _>>()?
    } else {
        let mut c = Cur::new(buf, need(b"co64")?, "co64");
        c.take(4)?;
        let n = c.table(8)?;
        (0..n).map(|_| c.u64()).collect::<Result<_, _>>()?
    };
    // Samples per chunk: runs (first chunk 1-based, samples per chunk).
    let mut c = Cur::new(buf, need(b"stsc")?, "stsc");
    c.take(4)?;
    let n = c.table(12)?;
    let mut runs = Vec::with_capacity(n);
    for _ in 0..n {
        let (first, per) = (c.u32()?, c.u32()?);
        c.u32()?;
        if first == 0 || runs.last().is_some_and(|(f, _)| *f >= first) {
            return Err(format!("stsc: first chunk {first} is not increasing from 1"));
        }
        runs.push((first, per));
    }
    // Times.
    let mut c = Cur::new(buf, need(b"stts")?, "stts");
    c.take(4)?;
    let n = c.table(8)?;
    let mut deltas = Vec::with_capacity(sizes.len());
    for _ in 0..n {
        let (count, delta) = (c.u32()?, c.u32()?);
        let take = (count as usize).min(sizes.len() - deltas.len());
        deltas.extend(std::iter::repeat_n(delta, take));
    }
    if deltas.len() < sizes.len() {
        return Err(format!(
            "stts covers {} samples, stsz has {}",
            deltas.len(),
            sizes.len()
        ));
    }
    let mut out = Vec::with_capacity(sizes.len());
    let mut dts = 0u64;
    for (ci, &chunk_at) in chunks.iter().enumerate() {
        let chunk = ci as u32 + 1;
        let per = runs.iter().rev().find(|(f, _)| *f <= chunk).map_or(0, |r| r.1);
        let mut off = chunk_at;
        for _ in 0..per {
            let Some(&size) = sizes.get(out.len()) else { break };
            let duration = deltas[out.len()];
            out.push(SampleRef {
                offset: off,
                size,
                dts,
                duration,
            });
            off = off.saturating_add(u64::from(size));
            dts = dts.saturating_add(u64::from(duration));
        }
    }
    if out.len() < sizes.len() {
        return Err(format!(
            "stsc/stco place {} of the {} samples stsz lists",
            out.len(),
            sizes.len()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_a_zero_size_or_oversized_child_box_is_an_error_or_the_rest_never_a_loop() {
        // size 0 inside a parent: the rest of the parent.
        let b = [0, 0, 0, 0, b'f', b'r', b'e', b'e', 1, 2, 3];
        let kids = children(&b, 0, b.len(), 0).unwrap();
        assert_eq!((kids.len(), kids[0].end), (1, 11));
        let big = [0, 0, 0, 99, b'm', b'd', b'i', b'a'];
        assert!(children(&big, 0, 8, 100).unwrap_err().contains("at byte 100"));
    }

    #[test]
    fn rule_a_forged_sample_count_is_refused_before_allocating() {
        // stsz with a fixed size and 2^30 samples in a tiny file.
        let mut stsz = vec![0u8; 4];
        stsz.extend(64u32.to_be_bytes());
        stsz.extend((1u32 << 30).to_be_bytes());
        let mut buf = ((stsz.len() + 8) as u32).to_be_bytes().to_vec();
        buf.extend(b"stsz");
        buf.extend(&stsz);
        let st = children(&buf, 0, buf.len(), 0).unwrap();
        let stbl = BoxAt {
            kind: *b"stbl",
            start: 0,
            end: buf.len(),
        };
        let e = samples(&buf, &st, stbl, 0, 10_000).unwrap_err();
        assert!(e.contains("do not fit"), "{e}");
    }

    #[test]
    fn rule_text_is_not_an_mp4() {
        assert!(index(&mut std::io::Cursor::new(b"$GPRMC,1,2,3"))
            .unwrap_err()
            .contains("not an MP4"));
        assert!(index(&mut std::io::Cursor::new(b""))
            .unwrap_err()
            .contains("not an MP4"));
    }
}
