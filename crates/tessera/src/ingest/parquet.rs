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
    parse_with(bytes, None)
}

/// [`parse`] with fix times checked against the source's receipt ([`super::receipt::judge`]).
///
/// ```
/// assert_eq!(tessera::ingest::parquet::parse_with(b"PAR1", None).rejections[0].reason.as_str(), "bad_file");
/// ```
pub fn parse_with(bytes: &[u8], receipt: Option<&super::receipt::Receipt>) -> Parsed {
    let mut out = Parsed {
        fixes: Vec::new(),
        rejections: Vec::new(),
        lines: LineCounts::default(),
        ..Parsed::default()
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
    let batches = match read_untrusted(bytes) {
        Ok(b) => b,
        Err(e) => {
            whole_file(&mut out, format!("Parquet read error: {e}"));
            return out;
        }
    };
    for b in &batches {
        let first = out.lines.total;
        let mut fixes = Vec::with_capacity(b.num_rows());
        if let Err(e) = crate::tables::batch_to_fixes(b, &mut fixes) {
            whole_file(&mut out, format!("not a tessera fixes file: {e}"));
            return out;
        }
        let nulls = required_nulls(b);
        for (i, mut f) in fixes.into_iter().enumerate() {
            let row = u32::try_from(first + i as u64 + 1).unwrap_or(u32::MAX);
            out.lines.total += 1;
            let judged = nulls(i).or_else(|| check_values(&f)).map_or_else(
                || {
                    super::receipt::settle(f.time_ms, None, receipt, &mut out.lines)
                        .map(|t| f.time_ms = t)
                        .err()
                },
                Some,
            );
            match judged {
                Some((reason, what)) => {
                    out.lines.rejected += 1;
                    let known =
                        |x: f64| (x.is_finite() && !what.starts_with("lat") && !what.starts_with("lon")).then_some(x);
                    out.rejections.push(Rejection {
                        line: row,
                        reason,
                        detail: format!("row {row}: {what}"),
                        time_ms: (!what.starts_with("time")).then_some(f.time_ms),
                        lat: known(f.lat),
                        lon: known(f.lon),
                    });
                }
                None => {
                    out.lines.fix += 1;
                    f.line = row;
                    out.fixes.push(f);
                }
            }
        }
    }
    out
}

/// Decode an untrusted Parquet file: its embedded Arrow schema (`ARROW:schema`, an IPC message
/// the arrow reader panics on when corrupt — found by fuzzing) is ignored and the schema is taken
/// from the Parquet types; and a panic anywhere in the reader is turned into an error carrying
/// the reader's message ([`catch_quietly`]), so a hostile file is one `bad_file`, never a crash
/// and never a panic report on stderr.
fn read_untrusted(bytes: &[u8]) -> Result<Vec<arrow_array::RecordBatch>, String> {
    use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    let data = bytes::Bytes::copy_from_slice(bytes);
    let read = move || -> Result<Vec<arrow_array::RecordBatch>, String> {
        let opts = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
        let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(data, opts)
            .and_then(|b| b.with_batch_size(crate::tables::BATCH_ROWS).build())
            .map_err(|e| e.to_string())?;
        reader.map(|b| b.map_err(|e| e.to_string())).collect()
    };
    catch_quietly(read).unwrap_or_else(|panic| Err(format!("the Parquet reader failed on this file ({panic})")))
}

thread_local! {
    /// Whether this thread is inside [`catch_quietly`].
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f` on this thread, a panic in it returned as `Err(its message)`. While `f` runs, its
/// panics skip the process's panic hook: the default hook would print "thread … panicked" and
/// a backtrace for what is a bad file, reported as one (found fuzzing parquet 59: a corrupt RLE
/// run header panics in `BitReader::get_vlq_int`). A hook of tessera's goes in front of the
/// process's hook the first time, and every other panic — other threads, or this one outside
/// `f` — reaches that hook as before.
fn catch_quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let earlier = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(std::cell::Cell::get) {
                earlier(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    r.map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into())
    })
}

/// The columns a fix cannot be without, and the reason a null in each is rejected with.
const REQUIRED: [(&str, Reason); 4] = [
    ("time", Reason::NoTime),
    ("lat", Reason::BadPosition),
    ("lon", Reason::BadPosition),
    ("quality", Reason::BadValue),
];

/// For row `i` of `b`, the first required column that is null there (a null must never take
/// another row's value or a default).
fn required_nulls(b: &arrow_array::RecordBatch) -> impl Fn(usize) -> Option<(Reason, String)> + '_ {
    move |i| {
        REQUIRED.iter().find_map(|(name, reason)| {
            let c = b.column_by_name(name)?;
            c.is_null(i).then(|| (*reason, format!("{name} is null")))
        })
    }
}

/// The first value of a fix that no receiver can report: position out of range or not finite,
/// quality 0 (no fix), a NaN or infinite altitude/HDOP/speed/course, a negative HDOP or speed, a
/// course outside 0–360°.
fn check_values(f: &crate::fix::Fix) -> Option<(Reason, String)> {
    if !(f.lat.is_finite() && f.lat.abs() <= 90.0) {
        return Some((Reason::BadPosition, format!("lat {} out of range", f.lat)));
    }
    if !(f.lon.is_finite() && f.lon.abs() <= 180.0) {
        return Some((Reason::BadPosition, format!("lon {} out of range", f.lon)));
    }
    if f.quality == 0 {
        return Some((Reason::NoFix, "quality 0".into()));
    }
    let checks = [
        ("alt_m", f.alt_m, f32::MIN, f32::MAX),
        ("hdop", f.hdop, 0.0, f32::MAX),
        ("speed_mps", f.speed_mps, 0.0, f32::MAX),
        ("course_deg", f.course_deg, 0.0, 360.0),
    ];
    checks.into_iter().find_map(|(name, v, lo, hi)| {
        let v = v?;
        (!(v.is_finite() && (lo..=hi).contains(&v))).then(|| {
            (
                Reason::BadValue,
                format!("{name} {v} is not a value a receiver reports"),
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, RecordBatch};
    use std::sync::Arc;

    /// A fixes batch of three rows with one column's middle value replaced by null.
    fn with_null(column: &str) -> Vec<u8> {
        let fixes: Vec<crate::fix::Fix> = (0..3)
            .map(|i| crate::fix::Fix::new(1_700_000_000_000 + i * 1000, 52.5, 13.4))
            .collect();
        let b = &crate::tables::fixes_to_batches("car-1", &fixes)[0];
        let schema = b.schema();
        let cols: Vec<Arc<dyn Array>> = schema
            .fields()
            .iter()
            .zip(b.columns())
            .map(|(f, c)| {
                if f.name() != column {
                    return c.clone();
                }
                let mask = arrow_array::BooleanArray::from(vec![true, false, true]);
                arrow_select_nullif(c, &mask)
            })
            .collect();
        let fields: Vec<_> = schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        let schema = Arc::new(arrow_schema::Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
        crate::tables::to_parquet(&schema, &[batch]).unwrap()
    }

    /// `c` with the rows where `keep` is false set to null (values underneath kept).
    fn arrow_select_nullif(c: &Arc<dyn Array>, keep: &arrow_array::BooleanArray) -> Arc<dyn Array> {
        let data = c.to_data();
        let nulls = arrow_buffer::NullBuffer::from(keep.values().clone());
        let data = data.into_builder().nulls(Some(nulls)).build().unwrap();
        arrow_array::make_array(data)
    }

    #[test]
    fn fuzz_regression_a_corrupt_embedded_arrow_schema_is_a_bad_file_not_a_panic() {
        let bytes = include_bytes!("../../tests/fuzz_regressions/parquet_source-4c62644d.parquet");
        let p = parse(bytes);
        assert!(p.lines.balanced());
        assert!(p.fixes.iter().all(|f| f.lat.abs() <= 90.0 && f.lon.abs() <= 180.0));
    }

    #[test]
    fn fuzz_regression_a_corrupt_page_that_panics_inside_arrow_is_a_bad_file() {
        // arrow-buffer panics ("offset + len out of bounds") decoding this page: the reader's
        // panic is caught and the file is one bad_file.
        let bytes = include_bytes!("../../tests/fuzz_regressions/parquet_source-053c5b12.parquet");
        let p = parse(bytes);
        assert!(p.lines.balanced());
        assert!(p.fixes.iter().all(|f| f.lat.abs() <= 90.0 && f.lon.abs() <= 180.0));
    }

    #[test]
    fn fuzz_regression_a_corrupt_rle_run_header_that_panics_inside_parquet_is_a_bad_file_naming_it() {
        // parquet 59 panics ("Num of bytes exceed MAX_VLQ_BYTE_LEN") reading this page's
        // dictionary indices: one bad_file whose detail carries the reader's message.
        let bytes = include_bytes!("../../tests/fuzz_regressions/parquet_source-558d357a.parquet");
        let p = parse(bytes);
        assert!(p.lines.balanced());
        assert!(p.fixes.is_empty());
        assert_eq!(p.rejections.len(), 1);
        assert_eq!(p.rejections[0].reason.as_str(), "bad_file");
        assert!(
            p.rejections[0].detail.contains("MAX_VLQ_BYTE_LEN"),
            "{:?}",
            p.rejections[0]
        );
    }

    #[test]
    fn catch_quietly_returns_the_panic_message_nests_and_leaves_panics_outside_it_unwinding() {
        assert_eq!(catch_quietly(|| 7), Ok(7));
        assert_eq!(
            catch_quietly(|| -> u8 { panic!("static message") }),
            Err("static message".into())
        );
        let n = 3;
        assert_eq!(
            catch_quietly(|| -> u8 { panic!("formatted {n}") }),
            Err("formatted 3".into())
        );
        // nested: the outer call is still quiet after the inner one returns
        let outer = catch_quietly(|| {
            let inner = catch_quietly(|| -> u8 { panic!("inner") });
            assert_eq!(inner, Err("inner".into()));
            assert!(QUIET.with(std::cell::Cell::get));
            panic!("outer")
        });
        assert_eq!(outer, Err::<(), _>("outer".into()));
        assert!(!QUIET.with(std::cell::Cell::get));
        // a panic outside it (another thread) still unwinds to its joiner; the hook in front of
        // the process's only stays quiet inside catch_quietly
        let other = std::thread::spawn(|| -> u8 { panic!("elsewhere") }).join();
        assert!(other.is_err());
    }

    #[test]
    fn rule_a_null_in_a_required_column_is_a_rejection_naming_the_column() {
        for (column, reason) in [
            ("time", "no_time"),
            ("lat", "bad_position"),
            ("lon", "bad_position"),
            ("quality", "bad_value"),
        ] {
            let p = parse(&with_null(column));
            assert_eq!(p.fixes.len(), 2, "{column}");
            assert_eq!(p.rejections.len(), 1, "{column}");
            let r = &p.rejections[0];
            assert_eq!((r.line, r.reason.as_str()), (2, reason), "{column}");
            assert!(r.detail.contains(&format!("{column} is null")), "{}", r.detail);
            assert!(p.lines.balanced());
            let lines: Vec<u32> = p.fixes.iter().map(|f| f.line).collect();
            assert_eq!(lines, [1, 3]);
        }
    }

    #[test]
    fn rule_nan_infinite_and_impossible_values_are_rejections_naming_the_column() {
        use crate::fix::Fix;
        let base = Fix::new(1_700_000_000_000, 52.5, 13.4);
        let cases: Vec<(Fix, &str, &str)> = vec![
            (
                Fix {
                    lat: f64::NAN,
                    ..base.clone()
                },
                "bad_position",
                "lat NaN",
            ),
            (
                Fix {
                    lon: f64::INFINITY,
                    ..base.clone()
                },
                "bad_position",
                "lon inf",
            ),
            (
                Fix {
                    hdop: Some(f32::NAN),
                    ..base.clone()
                },
                "bad_value",
                "hdop NaN",
            ),
            (
                Fix {
                    hdop: Some(-1.0),
                    ..base.clone()
                },
                "bad_value",
                "hdop -1",
            ),
            (
                Fix {
                    speed_mps: Some(f32::NEG_INFINITY),
                    ..base.clone()
                },
                "bad_value",
                "speed_mps -inf",
            ),
            (
                Fix {
                    course_deg: Some(400.0),
                    ..base.clone()
                },
                "bad_value",
                "course_deg 400",
            ),
            (
                Fix {
                    alt_m: Some(f32::NAN),
                    ..base.clone()
                },
                "bad_value",
                "alt_m NaN",
            ),
        ];
        for (f, reason, needle) in cases {
            let bytes = crate::tables::to_parquet(
                &crate::tables::fixes_schema(),
                &crate::tables::fixes_to_batches("d", &[f]),
            )
            .unwrap();
            let p = parse(&bytes);
            assert!(p.fixes.is_empty(), "{needle}");
            assert_eq!(p.rejections[0].reason.as_str(), reason, "{needle}");
            assert!(p.rejections[0].detail.contains(needle), "{}", p.rejections[0].detail);
        }
    }
}
