//! The core's one error type: every failure of the lake, the epoch run and the audit, naming the
//! file where there is one and keeping its cause as the error's source (`#[source]`/`#[from]`),
//! so a caller can walk the chain or match on the kind.

/// Any failure touching the lake, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A file's content is not what it should be.
    #[error("{path}: {message}")]
    Data {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A Parquet file could not be written or read.
    #[error("{path}: {source}")]
    Parquet {
        /// The file.
        path: String,
        /// The cause.
        source: parquet::errors::ParquetError,
    },
    /// The policy does not parse or validate.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    /// The pool cannot be allocated.
    #[error(transparent)]
    Allocation(#[from] crate::rewards::AllocError),
    /// A bad argument (device id, epoch...).
    #[error("{0}")]
    Invalid(String),
    /// The epoch is published and recomputing it gives other bytes.
    #[error("epoch {epoch} is already published and a new run would change it ({}); published epochs are immutable: pass --replace to overwrite it", changed.join("; "))]
    Published {
        /// The epoch.
        epoch: crate::epoch::Epoch,
        /// What changed, in words.
        changed: Vec<String>,
    },
    /// An earlier epoch has sources but was never run.
    #[error("epoch {missing} has sources in the lake but was never run, so {epoch} would start from an incomplete coverage state; run {missing} first, or pass --no-prior")]
    MissingPrior {
        /// The epoch asked for.
        epoch: crate::epoch::Epoch,
        /// The earlier epoch without outputs.
        missing: crate::epoch::Epoch,
    },
    /// Not a trace: nothing in the file became a fix, a receiver sentence or a counted rejection
    /// of one.
    #[error("{name}: not a trace ({detail}); tessera reads NMEA 0183 (incl. BlackVue .gps, GnssLogger), GPX, Parquet fixes, and camera telemetry in MP4 (GoPro GPMF, CAMM, BlackVue) or raw GPMF")]
    NotATrace {
        /// File name.
        name: String,
        /// What was found.
        detail: String,
    },
}

/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;
