//! `fixes/<blake3>.parquet`: normalized fixes, one row per fix.

use super::{column as col, opt, ts, BATCH_ROWS};
use crate::fix::Fix;
use arrow_array::builder::{
    Float32Builder, Float64Builder, StringBuilder, TimestampMillisecondBuilder, UInt32Builder, UInt8Builder,
};
use arrow_array::{
    ArrayRef, Float32Array, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt32Array, UInt8Array,
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

/// Record batch of the fixes schema → fixes (the device column is returned separately).
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
    let time = col::<TimestampMillisecondArray>(b, "time")?;
    let lat = col::<Float64Array>(b, "lat")?;
    let lon = col::<Float64Array>(b, "lon")?;
    let alt = col::<Float32Array>(b, "alt_m")?;
    let q = col::<UInt8Array>(b, "quality")?;
    let sats = col::<UInt8Array>(b, "sats")?;
    let hdop = col::<Float32Array>(b, "hdop")?;
    let speed = col::<Float32Array>(b, "speed_mps")?;
    let course = col::<Float32Array>(b, "course_deg")?;
    let line = col::<UInt32Array>(b, "line")?;
    let talker = col::<StringArray>(b, "talker")?;
    out.reserve(b.num_rows());
    for i in 0..b.num_rows() {
        let t = talker.value(i).as_bytes();
        out.push(Fix {
            time_ms: time.value(i),
            lat: lat.value(i),
            lon: lon.value(i),
            alt_m: opt(alt, i, |i| alt.value(i)),
            quality: q.value(i),
            sats: opt(sats, i, |i| sats.value(i)),
            hdop: opt(hdop, i, |i| hdop.value(i)),
            speed_mps: opt(speed, i, |i| speed.value(i)),
            course_deg: opt(course, i, |i| course.value(i)),
            line: line.value(i),
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
    fn parquet_bytes_are_deterministic() {
        let fixes: Vec<Fix> = (0..1000).map(|i| Fix::new(i, 1.0 + i as f64 * 1e-5, 2.0)).collect();
        let a = to_parquet(&fixes_schema(), &fixes_to_batches("d", &fixes)).unwrap();
        let b = to_parquet(&fixes_schema(), &fixes_to_batches("d", &fixes)).unwrap();
        assert_eq!(a, b);
    }
}
