//! `fixes/<blake3>.parquet`: normalized fixes, one row per fix.

use super::{column as col, ts, BATCH_ROWS};
use crate::fix::Fix;
use arrow_array::builder::{
    Float32Builder, Float64Builder, StringBuilder, TimestampMillisecondBuilder, UInt32Builder, UInt8Builder,
};
use arrow_array::{
    Array, ArrayRef, Float32Array, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt32Array,
    UInt8Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use std::sync::Arc;

/// Schema of `fixes/<blake3>.parquet`.
///
/// ```
/// assert_eq!(tessera::tables::fixes_schema().field(1).name(), "time");
/// ```
pub fn fixes_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("device", DataType::Utf8, false),
        Field::new("time", ts(), false),
        Field::new("lat", DataType::Float64, false),
        Field::new("lon", DataType::Float64, false),
        Field::new("alt_m", DataType::Float32, true),
        Field::new("quality", DataType::UInt8, false),
        Field::new("sats", DataType::UInt8, true),
        Field::new("hdop", DataType::Float32, true),
        Field::new("speed_mps", DataType::Float32, true),
        Field::new("course_deg", DataType::Float32, true),
        Field::new("line", DataType::UInt32, false),
        Field::new("talker", DataType::Utf8, false),
    ]))
}

/// Fixes → record batches of at most [`BATCH_ROWS`].
///
/// ```
/// let f = tessera::fix::Fix::new(0, 52.5, 13.4);
/// assert_eq!(tessera::tables::fixes_to_batches("car-1", &[f])[0].num_rows(), 1);
/// ```
pub fn fixes_to_batches(device: &str, fixes: &[Fix]) -> Vec<RecordBatch> {
    fixes_to_batches_sized(device, fixes, BATCH_ROWS)
}

/// Fixes → record batches of at most `batch_rows`.
///
/// ```
/// let fixes = vec![tessera::fix::Fix::new(0, 52.5, 13.4); 5];
/// assert_eq!(tessera::tables::fixes_to_batches_sized("car-1", &fixes, 2).len(), 3);
/// ```
pub fn fixes_to_batches_sized(device: &str, fixes: &[Fix], batch_rows: usize) -> Vec<RecordBatch> {
    fixes
        .chunks(batch_rows.max(1))
        .map(|chunk| {
            let n = chunk.len();
            let mut dev = StringBuilder::with_capacity(n, n * device.len());
            let mut time = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
            let (mut lat, mut lon) = (Float64Builder::with_capacity(n), Float64Builder::with_capacity(n));
            let mut alt = Float32Builder::with_capacity(n);
            let mut q = UInt8Builder::with_capacity(n);
            let mut sats = UInt8Builder::with_capacity(n);
            let (mut hdop, mut speed, mut course) = (
                Float32Builder::with_capacity(n),
                Float32Builder::with_capacity(n),
                Float32Builder::with_capacity(n),
            );
            let mut line = UInt32Builder::with_capacity(n);
            let mut talker = StringBuilder::with_capacity(n, 2 * n);
            for f in chunk {
                dev.append_value(device);
                time.append_value(f.time_ms);
                lat.append_value(f.lat);
                lon.append_value(f.lon);
                alt.append_option(f.alt_m);
                q.append_value(f.quality);
                sats.append_option(f.sats);
                hdop.append_option(f.hdop);
                speed.append_option(f.speed_mps);
                course.append_option(f.course_deg);
                line.append_value(f.line);
                talker.append_value(f.talker_str());
            }
            let cols: Vec<ArrayRef> = vec![
                Arc::new(dev.finish()),
                Arc::new(time.finish()),
                Arc::new(lat.finish()),
                Arc::new(lon.finish()),
                Arc::new(alt.finish()),
                Arc::new(q.finish()),
                Arc::new(sats.finish()),
                Arc::new(hdop.finish()),
                Arc::new(speed.finish()),
                Arc::new(course.finish()),
                Arc::new(line.finish()),
                Arc::new(talker.finish()),
            ];
            RecordBatch::try_new(fixes_schema(), cols).expect("schema matches")
        })
        .collect()
}

/// The columns [`batch_to_fixes`] reads: every column of [`fixes_schema`] but `device`, which
/// is the source's (its metadata names it) and the same on every row. A lake read decodes only
/// these (`tables::from_parquet_columns`).
pub const FIX_COLUMNS: [&str; 11] = [
    "time",
    "lat",
    "lon",
    "alt_m",
    "quality",
    "sats",
    "hdop",
    "speed_mps",
    "course_deg",
    "line",
    "talker",
];

/// The columns an epoch reads ([`batch_to_epoch_fixes`]): [`FIX_COLUMNS`] without `alt_m`,
/// `course_deg` and `talker`, which no quality gate, trust rule, cover or output of an epoch
/// uses. Real receivers fill altitude and course on every fix (two 4-byte columns that hardly
/// compress), so an epoch skips decoding them; a rule that comes to need one adds it here (the
/// test `rule_an_epoch_reads_no_altitude_course_or_talker` then fails until it does).
pub const EPOCH_FIX_COLUMNS: [&str; 8] = ["time", "lat", "lon", "quality", "sats", "hdop", "speed_mps", "line"];

/// Record batch of the fixes schema → fixes (the device column, if present, is not read: see
/// [`FIX_COLUMNS`]).
///
/// # Errors
/// A message naming a missing or mistyped column.
///
/// ```
/// let f = tessera::fix::Fix::new(1_000, 52.5, 13.4);
/// let b = &tessera::tables::fixes_to_batches("car-1", &[f.clone()])[0];
/// let mut back = Vec::new();
/// tessera::tables::batch_to_fixes(b, &mut back).unwrap();
/// assert_eq!(back, [f]);
/// ```
pub fn batch_to_fixes(b: &RecordBatch, out: &mut Vec<Fix>) -> Result<(), String> {
    decode(b, out, true)
}

/// A record batch of [`EPOCH_FIX_COLUMNS`] (or more) → fixes as an epoch reads them: every
/// field of [`batch_to_fixes`] but `alt_m` and `course_deg` (`None`) and `talker` (`??`).
///
/// # Errors
/// A message naming a missing or mistyped column of [`EPOCH_FIX_COLUMNS`].
///
/// ```
/// let mut f = tessera::fix::Fix::new(1_000, 52.5, 13.4);
/// f.alt_m = Some(34.0);
/// let b = &tessera::tables::fixes_to_batches("car-1", &[f.clone()])[0];
/// let mut back = Vec::new();
/// tessera::tables::batch_to_epoch_fixes(b, &mut back).unwrap();
/// assert_eq!((back[0].alt_m, back[0].talker, back[0].lat), (None, *b"??", 52.5));
/// ```
pub fn batch_to_epoch_fixes(b: &RecordBatch, out: &mut Vec<Fix>) -> Result<(), String> {
    decode(b, out, false)
}

/// [`batch_to_fixes`] (`all`) or [`batch_to_epoch_fixes`].
fn decode(b: &RecordBatch, out: &mut Vec<Fix>, all: bool) -> Result<(), String> {
    let time = col::<TimestampMillisecondArray>(b, "time")?;
    let lat = col::<Float64Array>(b, "lat")?;
    let lon = col::<Float64Array>(b, "lon")?;
    let q = col::<UInt8Array>(b, "quality")?;
    let sats = col::<UInt8Array>(b, "sats")?;
    let hdop = col::<Float32Array>(b, "hdop")?;
    let speed = col::<Float32Array>(b, "speed_mps")?;
    let line = col::<UInt32Array>(b, "line")?;
    let (alt, course, talker) = match all {
        true => (
            Some(col::<Float32Array>(b, "alt_m")?),
            Some(col::<Float32Array>(b, "course_deg")?),
            Some(col::<StringArray>(b, "talker")?),
        ),
        false => (None, None, None),
    };
    // Columnar: the value slices are walked together (no per-row downcast or bounds check
    // but the null bits'); a null-free column skips its bit test.
    let get = |a: &dyn Array, i: usize| a.nulls().is_none_or(|n| n.is_valid(i));
    let opt = |a: Option<&Float32Array>, i: usize| a.filter(|a| get(*a, i)).map(|a| a.values()[i]);
    let text = talker.map(|t| (t.value_offsets(), t.value_data()));
    out.reserve(b.num_rows());
    let rows = time
        .values()
        .iter()
        .zip(lat.values().iter().zip(lon.values()))
        .zip(q.values().iter().zip(line.values()));
    for (i, ((&time_ms, (&lat, &lon)), (&quality, &line))) in rows.enumerate() {
        let t = text.map_or(&b""[..], |(offsets, text)| {
            &text[offsets[i] as usize..offsets[i + 1] as usize]
        });
        out.push(Fix {
            time_ms,
            lat,
            lon,
            alt_m: opt(alt, i),
            quality,
            sats: get(sats, i).then(|| sats.values()[i]),
            hdop: get(hdop, i).then(|| hdop.values()[i]),
            speed_mps: get(speed, i).then(|| speed.values()[i]),
            course_deg: opt(course, i),
            line,
            talker: [t.first().copied().unwrap_or(b'?'), t.get(1).copied().unwrap_or(b'?')],
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::{from_parquet, to_parquet};

    #[test]
    fn fixes_roundtrip_through_parquet() {
        let mut f = Fix::new(1_794_824_100_000, 52.5, 13.4);
        f.hdop = Some(0.9);
        f.sats = Some(7);
        f.line = 42;
        let mut g = f.clone();
        g.alt_m = Some(31.5);
        g.hdop = None;
        let batches = fixes_to_batches("car-1", &[f.clone(), g.clone()]);
        let bytes = to_parquet(&fixes_schema(), &batches).unwrap();
        let back = from_parquet(bytes.into()).unwrap();
        let mut out = Vec::new();
        for b in &back {
            batch_to_fixes(b, &mut out).unwrap();
        }
        assert_eq!(out, vec![f, g]);
    }

    #[test]
    fn rule_a_lake_read_of_only_fix_columns_gives_every_field_and_null_back() {
        // Nulls in every optional column at different rows, across several batches and pages.
        let fixes: Vec<Fix> = (0..5000)
            .map(|i| {
                let mut f = Fix::new(i * 1000, 52.5 + i as f64 * 1e-5, 13.4 - i as f64 * 1e-5);
                f.alt_m = (i % 3 != 0).then_some(i as f32 * 0.5);
                f.sats = (i % 5 != 1).then_some((i % 12) as u8);
                f.hdop = (i % 7 != 2).then_some(0.5 + (i % 9) as f32 * 0.1);
                f.speed_mps = (i % 11 != 3).then_some(i as f32 * 0.01);
                f.course_deg = (i % 13 != 4).then_some((i % 360) as f32);
                f.quality = (i % 6) as u8;
                f.line = i as u32 * 2 + 1;
                f.talker = if i % 2 == 0 { *b"GP" } else { *b"GN" };
                f
            })
            .collect();
        let bytes = to_parquet(&fixes_schema(), &fixes_to_batches_sized("car-1", &fixes, 700)).unwrap();
        let batches = crate::tables::from_parquet_columns(bytes.into(), 333, Some(&FIX_COLUMNS)).unwrap();
        assert!(batches.iter().all(|b| b.schema().column_with_name("device").is_none()));
        let mut out = Vec::new();
        for b in &batches {
            batch_to_fixes(b, &mut out).unwrap();
        }
        assert_eq!(out, fixes);
        // A column the reader needs and the file lacks is an error naming it, not a panic.
        let no_lat: Vec<&str> = FIX_COLUMNS.iter().copied().filter(|c| *c != "lat").collect();
        let bytes = to_parquet(&fixes_schema(), &fixes_to_batches("car-1", &fixes[..3])).unwrap();
        let b = crate::tables::from_parquet_columns(bytes.into(), 333, Some(&no_lat)).unwrap();
        assert!(batch_to_fixes(&b[0], &mut Vec::new()).unwrap_err().contains("\"lat\""));
    }

    #[test]
    fn parquet_bytes_are_deterministic() {
        let fixes: Vec<Fix> = (0..1000).map(|i| Fix::new(i, 1.0 + i as f64 * 1e-5, 2.0)).collect();
        let a = to_parquet(&fixes_schema(), &fixes_to_batches("d", &fixes)).unwrap();
        let b = to_parquet(&fixes_schema(), &fixes_to_batches("d", &fixes)).unwrap();
        assert_eq!(a, b);
    }
}
