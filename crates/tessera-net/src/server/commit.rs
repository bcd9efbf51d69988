//! Group commit of accepted uploads: one thread takes every upload waiting when it is free and
//! ingests them with one [`Lake::ingest_batch`] (one sync for all of them), after making the
//! replay log durable. Each request is answered only after its own bytes are durable.

use super::replay::ReplayCache;
use std::sync::mpsc;
use std::sync::Arc;
use tessera::lake::{IngestOutcome, Lake, Upload};

/// Most uploads committed together.
const MAX_BATCH: usize = 256;

/// A received body: in memory, or (a camera video) the temp file it streamed to.
pub enum Body {
    /// The decoded bytes.
    Bytes(Vec<u8>),
    /// A video on disk, ingested by seeking to its telemetry (removed when dropped).
    File(tempfile::TempPath),
}

impl Body {
    /// Bytes received.
    pub fn size(&self) -> usize {
        match self {
            Body::Bytes(b) => b.len(),
            Body::File(p) => std::fs::metadata(p).map_or(0, |m| m.len() as usize),
        }
    }
}

/// One upload waiting for the commit.
pub struct Job {
    /// Device id (authenticated).
    pub device: String,
    /// File name.
    pub name: String,
    /// The decoded body.
    pub bytes: Body,
    /// Receipt time (server clock), UTC ms.
    pub received_at_ms: i64,
    /// Where the outcome goes.
    pub reply: tokio::sync::oneshot::Sender<Result<IngestOutcome, tessera::lake::Error>>,
}

/// Start the commit thread; it ends when every sender is dropped.
pub fn spawn(lake: Lake, replay: Arc<ReplayCache>, commits: Arc<std::sync::atomic::AtomicU64>) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("tessera-commit".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(j) => batch.push(j),
                        Err(_) => break,
                    }
                }
                commit(&lake, &replay, batch);
                commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
        .expect("commit thread");
    tx
}

fn commit(lake: &Lake, replay: &ReplayCache, batch: Vec<Job>) {
    if let Err(e) = replay.sync() {
        for j in batch {
            let _ = j.reply.send(Err(tessera::lake::Error::Io {
                path: "server/replay.log".into(),
                source: std::io::Error::new(e.kind(), e.to_string()),
            }));
        }
        return;
    }
    let uploads: Vec<Upload> = batch
        .iter()
        .filter_map(|j| match &j.bytes {
            Body::Bytes(b) => Some(Upload::new(&j.device, &j.name, b).received_at(j.received_at_ms)),
            Body::File(_) => None,
        })
        .collect();
    let mut outcomes = lake.ingest_batch(&uploads).into_iter();
    for j in batch {
        let o = match &j.bytes {
            Body::Bytes(_) => outcomes
                .next()
                .unwrap_or_else(|| Err(tessera::lake::Error::Invalid("not ingested".into()))),
            Body::File(p) => lake.ingest_path_as(&j.device, &j.name, p, Some(j.received_at_ms)),
        };
        let _ = j.reply.send(o);
    }
}
