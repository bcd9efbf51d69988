//! Parquet sources: a file in tessera's fixes schema (what `tessera simulate --scale` writes, or
//! what another tool exported) ingested like a trace. Each row counts as a "line" (1-based row
//! number); rows with an impossible position or time are rejected and reported, never dropped.
//! The upload's device id is authoritative: the file's `device` column is not trusted.

use super::{LineCounts, Parsed, Reason, Rejection};

/// Parse a Parquet fixes file.
///
/// ```
/// use tessera::{fix::Fix, tables, ingest};
/// let fixes = vec![Fix::new(1_700_000_000_000, 52.5, 13.4), Fix::new(1_700_000_001_000, 95.0, 13.4)];
/// let bytes = tables::to_parquet(&tables::fixes_schema(), &tables::fixes_to_batches("car-1", &fixes)).unwrap();
/// assert_eq!(ingest::Format::detect(&bytes), ingest::Format::Parquet);
/// let p = ingest::parse(&bytes);
/// assert_eq!((p.fixes.len(), p.rejections.len()), (1, 1));
/// assert_eq!(p.rejections[0].line, 2); // the row
/// assert!(p.lines.balanced());
/// ```
pub fn parse(bytes: &[u8]) -> Parsed {
    let mut out = Parsed {
        fixes: Vec::new(),
        rejections: Vec::new(),
        lines: LineCounts::default(),
    };
    let whole_file = |out: &mut Parsed, detail: String| {
        out.fixes.clear();
        out.rejections = vec![Rejection::at(0, Reason::BadFile, detail)];
        out.lines = LineCounts {
            total: 1,
            rejected: 1,
            ..LineCounts::default()
        };
    };
    let batches = match crate::tables::from_parquet(bytes::Bytes::copy_from_slice(bytes)) {
        Ok(b) => b,
        Err(e) => {
            whole_file(&mut out, format!("Parquet read error: {e}"));
            return out;
        }
    };
    let mut all = Vec::new();
    for b in &batches {
        if let Err(e) = crate::tables::batch_to_fixes(b, &mut all) {
            whole_file(&mut out, format!("not a tessera fixes file: {e}"));
            return out;
        }
    }
    out.fixes.reserve(all.len());
    for (i, mut f) in all.into_iter().enumerate() {
        let row = u32::try_from(i + 1).unwrap_or(u32::MAX);
        out.lines.total += 1;
        let bad = if !(f.lat.is_finite() && f.lon.is_finite() && f.lat.abs() <= 90.0 && f.lon.abs() <= 180.0) {
            Some((
                Reason::BadPosition,
                format!("row {row}: lat {} lon {} out of range", f.lat, f.lon),
            ))
        } else if f.quality == 0 {
            Some((Reason::NoFix, format!("row {row}: quality 0")))
        } else {
            None
        };
        match bad {
            Some((reason, detail)) => {
                out.lines.rejected += 1;
                out.rejections.push(Rejection {
                    line: row,
                    reason,
                    detail,
                    time_ms: Some(f.time_ms),
                    lat: f.lat.is_finite().then_some(f.lat),
                    lon: f.lon.is_finite().then_some(f.lon),
                });
            }
            None => {
                out.lines.fix += 1;
                f.line = row;
                out.fixes.push(f);
            }
        }
    }
    out
}
