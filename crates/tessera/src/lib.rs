#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![warn(clippy::missing_errors_doc, clippy::too_many_lines)]

pub mod audit;
pub mod cells;
pub mod epoch;
pub mod error;
pub mod fix;
pub mod fixed;
pub mod frames;
#[cfg(feature = "export")]
pub mod geoparquet;
#[cfg(feature = "export")]
pub mod gis;
pub mod ingest;
pub mod lake;
pub mod manifest;
pub mod merkle;
pub mod novelty;
pub mod pipeline;
pub mod places;
pub mod policy;
pub mod quality;
pub mod registry;
#[cfg(feature = "render")]
pub mod render;
pub mod report;
pub mod review;
pub mod rewards;
#[cfg(feature = "simulate")]
pub mod simulate;
pub(crate) mod spill;
pub mod state;
pub mod tables;
#[cfg(test)]
pub(crate) mod test_rng;
pub(crate) mod trig;
pub mod trust;

/// The `bytes` crate: [`pipeline::EpochInputs::places_parquet`] and the places cache hand out
/// `bytes::Bytes`.
pub use bytes;

/// Whether this CPU has every instruction-set extension this build was compiled for. x86-64
/// builds target x86-64-v3 (see `.cargo/config.toml`): AVX2, FMA, BMI1/2, LZCNT, F16C, MOVBE.
/// Entry points (CLI, Python module) call this first and stop with this message instead of
/// dying on an illegal instruction.
///
/// ```
/// assert!(tessera::cpu_supported().is_ok()); // the tests run on the machine they were built for
/// ```
///
/// # Errors
/// A message naming the missing instruction-set extensions.
pub fn cpu_supported() -> Result<(), String> {
    #[cfg(target_arch = "x86_64")]
    {
        let mut missing: Vec<&str> = Vec::new();
        macro_rules! need {
            ($($f:tt),*) => {$(
                if cfg!(target_feature = $f) && !std::arch::is_x86_feature_detected!($f) {
                    missing.push($f);
                }
            )*};
        }
        need!("avx", "avx2", "fma", "bmi1", "bmi2", "lzcnt", "f16c", "movbe");
        if !missing.is_empty() {
            return Err(format!(
                "this tessera build needs CPU features {} that this CPU lacks; rebuild for it with \
                 RUSTFLAGS=\"-C target-cpu=native\"",
                missing.join(", ")
            ));
        }
    }
    Ok(())
}
