//! `imu/<blake3>.parquet`: IMU readings of a camera source, one row per sample of one sensor
//! (accelerometer m/s², gyroscope rad/s, magnetometer µT; axes as the source's
//! `telemetry.axes` says).

use super::{column as col, BATCH_ROWS};
use crate::ingest::telemetry::{ImuSample, Sensor};
use arrow_array::builder::{Float32Builder, StringBuilder, TimestampMicrosecondBuilder, UInt32Builder};
use arrow_array::{ArrayRef, Float32Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::Arc;

/// Schema of `imu/<blake3>.parquet`.
///
/// ```
/// assert_eq!(tessera::tables::imu_schema().field(2).name(), "sensor");
/// ```
pub fn imu_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("device", DataType::Utf8, false),
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("sensor", DataType::Utf8, false),
        Field::new("x", DataType::Float32, false),
        Field::new("y", DataType::Float32, false),
        Field::new("z", DataType::Float32, false),
        Field::new("line", DataType::UInt32, false),
    ]))
}

/// IMU samples → record batches of at most [`BATCH_ROWS`].
///
/// ```
/// use tessera::ingest::telemetry::{ImuSample, Sensor};
/// let s = ImuSample { time_us: 1, sensor: Sensor::Accel, xyz: [0.0, 9.8, 0.0], line: 1 };
/// assert_eq!(tessera::tables::imu_to_batches("cam-1", &[s])[0].num_rows(), 1);
/// ```
pub fn imu_to_batches(device: &str, samples: &[ImuSample]) -> Vec<RecordBatch> {
    samples
        .chunks(BATCH_ROWS)
        .map(|chunk| {
            let n = chunk.len();
            let mut dev = StringBuilder::with_capacity(n, n * device.len());
            let mut time = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
            let mut sensor = StringBuilder::with_capacity(n, 5 * n);
            let mut xyz = [0; 3].map(|_| Float32Builder::with_capacity(n));
            let mut line = UInt32Builder::with_capacity(n);
            for s in chunk {
                dev.append_value(device);
                time.append_value(s.time_us);
                sensor.append_value(s.sensor.as_str());
                for (b, v) in xyz.iter_mut().zip(s.xyz) {
                    b.append_value(v);
                }
                line.append_value(s.line);
            }
            let [mut x, mut y, mut z] = xyz;
            let cols: Vec<ArrayRef> = vec![
                Arc::new(dev.finish()),
                Arc::new(time.finish()),
                Arc::new(sensor.finish()),
                Arc::new(x.finish()),
                Arc::new(y.finish()),
                Arc::new(z.finish()),
                Arc::new(line.finish()),
            ];
            RecordBatch::try_new(imu_schema(), cols).expect("schema matches")
        })
        .collect()
}

/// Record batch of the IMU schema → samples.
///
/// # Errors
/// A message naming a missing or mistyped column, or an unknown sensor name.
///
/// ```
/// use tessera::ingest::telemetry::{ImuSample, Sensor};
/// let s = ImuSample { time_us: 7, sensor: Sensor::Gyro, xyz: [0.1, 0.2, 0.3], line: 4 };
/// let mut back = Vec::new();
/// tessera::tables::batch_to_imu(&tessera::tables::imu_to_batches("cam-1", &[s])[0], &mut back).unwrap();
/// assert_eq!(back, [s]);
/// ```
pub fn batch_to_imu(b: &RecordBatch, out: &mut Vec<ImuSample>) -> Result<(), String> {
    let time = col::<TimestampMicrosecondArray>(b, "time")?;
    let sensor = col::<StringArray>(b, "sensor")?;
    let (x, y, z) = (
        col::<Float32Array>(b, "x")?,
        col::<Float32Array>(b, "y")?,
        col::<Float32Array>(b, "z")?,
    );
    let line = col::<UInt32Array>(b, "line")?;
    for i in 0..b.num_rows() {
        out.push(ImuSample {
            time_us: time.value(i),
            sensor: Sensor::parse(sensor.value(i))
                .ok_or_else(|| format!("sensor {:?} is not accel, gyro or mag", sensor.value(i)))?,
            xyz: [x.value(i), y.value(i), z.value(i)],
            line: line.value(i),
        });
    }
    Ok(())
}
