//! Reading an upload's body: streamed to a temp file while hashed (BLAKE3, for the signature),
//! never held whole in memory while it arrives; `Content-Encoding: gzip` decoded on the way with
//! the same size limit on what it decodes to; refused when it arrives slower than the limits
//! allow (a chunk must come within `body_idle_timeout`, and after that long the average rate must
//! stay above `min_body_rate`).

use super::{Limits, Refusal};
use axum::body::Body;
use http_body_util::BodyExt;
use std::io::Write;
use std::time::Instant;

/// A body on disk (decoded) with its BLAKE3.
pub struct Received {
    /// The temp file (removed when dropped).
    pub file: tempfile::NamedTempFile,
    /// BLAKE3 of the decoded bytes.
    pub hash: blake3::Hash,
}

/// Where decoded bytes go: the temp file and the hasher, within the size limit.
struct Sink {
    file: std::io::BufWriter<std::fs::File>,
    hasher: blake3::Hasher,
    len: usize,
    max: usize,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.len + buf.len() > self.max {
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                "over the body limit",
            ));
        }
        self.file.write_all(buf)?;
        self.hasher.update(buf);
        self.len += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

enum Decoder {
    Identity(Box<Sink>),
    Gzip(Box<flate2::write::GzDecoder<Sink>>),
}

impl Decoder {
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Decoder::Identity(s) => s.write_all(b),
            Decoder::Gzip(g) => g.write_all(b),
        }
    }
    fn finish(self) -> std::io::Result<Sink> {
        match self {
            Decoder::Identity(s) => Ok(*s),
            Decoder::Gzip(g) => g.finish(),
        }
    }
}

fn io_refusal(e: &std::io::Error, max: usize) -> Refusal {
    if e.kind() == std::io::ErrorKind::FileTooLarge {
        Refusal::TooLarge(format!("body decodes to more than {max} bytes"))
    } else {
        Refusal::BodyError(format!("could not decode the body: {e}"))
    }
}

/// Stream `body` (encoded as `encoding`: `None`/`identity` or `gzip`) into a temp file in `dir`.
///
/// # Errors
/// [`Refusal::TooLarge`] past `max` bytes on the wire or decoded, [`Refusal::Timeout`] when too
/// slow, [`Refusal::BodyError`] for an unknown encoding, a broken gzip stream or a failed read,
/// [`Refusal::StorageError`] when the temp file cannot be written.
pub async fn receive(
    body: Body,
    encoding: Option<&str>,
    limits: &Limits,
    max: usize,
    dir: &std::path::Path,
) -> Result<Received, Refusal> {
    let tmp = tempfile::Builder::new()
        .prefix(".upload-")
        .tempfile_in(dir)
        .map_err(|e| Refusal::StorageError(format!("temp file in {}: {e}", dir.display())))?;
    let file = tmp.reopen().map_err(|e| Refusal::StorageError(e.to_string()))?;
    let sink = Sink {
        file: std::io::BufWriter::with_capacity(64 << 10, file),
        hasher: blake3::Hasher::new(),
        len: 0,
        max,
    };
    let mut dec = match encoding.map(str::trim) {
        None | Some("") | Some("identity") => Decoder::Identity(Box::new(sink)),
        Some("gzip") | Some("x-gzip") => Decoder::Gzip(Box::new(flate2::write::GzDecoder::new(sink))),
        Some(other) => {
            return Err(Refusal::BodyError(format!(
                "Content-Encoding {other:?} is not supported (gzip or none)"
            )))
        }
    };
    let started = Instant::now();
    let mut body = body;
    let mut wire = 0usize;
    loop {
        let next = tokio::time::timeout(limits.body_idle_timeout, body.frame())
            .await
            .map_err(|_| Refusal::Timeout(format!("no body data for {} s", limits.body_idle_timeout.as_secs())))?;
        let Some(frame) = next else { break };
        let frame = frame.map_err(|e| Refusal::BodyError(format!("could not read the body: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        wire += data.len();
        if wire > max {
            return Err(Refusal::TooLarge(format!("body exceeds {max} bytes")));
        }
        dec.write_all(&data).map_err(|e| io_refusal(&e, max))?;
        let secs = started.elapsed().as_secs_f64();
        if secs > limits.body_idle_timeout.as_secs_f64() && (wire as f64) < secs * limits.min_body_rate as f64 {
            return Err(Refusal::Timeout(format!(
                "body arriving at {:.0} bytes/s, below the {} bytes/s minimum",
                wire as f64 / secs,
                limits.min_body_rate
            )));
        }
    }
    let mut sink = dec.finish().map_err(|e| io_refusal(&e, max))?;
    sink.flush().map_err(|e| Refusal::StorageError(e.to_string()))?;
    Ok(Received {
        file: tmp,
        hash: sink.hasher.finalize(),
    })
}

/// Read and drop what a client sends of a refused request's body — at most 64 KiB, for at most a
/// second, nothing kept — so the refusal reaches a client still writing a small body instead of
/// a reset connection.
pub async fn discard(body: Body) {
    let mut body = body;
    let mut seen = 0usize;
    let drain = async {
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len());
            if seen > 64 << 10 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), drain).await;
}
