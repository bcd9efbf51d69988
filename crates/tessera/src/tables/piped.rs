//! A [`ColumnParallelWriter`] on a thread of its own, fed batches through a bounded channel:
//! the caller goes on (builds the next batches, scores the next cells) while the last ones are
//! encoded, so the encoding's column tail and the caller's serial work overlap instead of
//! leaving a core idle in turn. The same batches reach the same writer in the same order: the
//! same bytes as writing them directly.
//!
//! The encoding thread's column tasks run on a rayon pool of their own ([`encode_pool`]), never
//! on the global one: a global pool thread waits for the encoding (a full channel, the last row
//! group) by blocking, and the encoding must not need that thread. (With the column tasks on the
//! global pool, a worker that picked up a scorer's `finish` while inside one of the encoding's
//! own column tasks waited for the encoding to end, which waited for that task: a deadlock,
//! seen in testing.) The two pools' threads share the cores; the scheduler fills the gaps one
//! leaves with the other's work.

use super::ColumnParallelWriter;
use arrow_array::RecordBatch;
use parquet::errors::{ParquetError, Result};
use std::io::Write;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::OnceLock;
use std::thread::JoinHandle;

/// Batch groups queued beyond the one being encoded (bounds the memory held: at most this many
/// plus one groups of batches in flight).
const QUEUED: usize = 1;

/// A [`ColumnParallelWriter`] encoding on its own thread.
pub(crate) struct PipedWriter<W: Write + Send> {
    tx: Option<SyncSender<Vec<RecordBatch>>>,
    thread: Option<JoinHandle<Result<W>>>,
}

impl<W: Write + Send + 'static> PipedWriter<W> {
    /// Move `writer` to a thread of its own; the writer back when no thread or pool can be
    /// started (the caller then encodes on its own thread: the same bytes).
    pub(crate) fn new(writer: Box<ColumnParallelWriter<W>>) -> std::result::Result<Self, Box<ColumnParallelWriter<W>>> {
        let Some(pool) = encode_pool() else {
            return Err(writer);
        };
        let (tx, rx) = sync_channel::<Vec<RecordBatch>>(QUEUED);
        let (give, take) = sync_channel::<Box<ColumnParallelWriter<W>>>(1);
        let spawned = std::thread::Builder::new()
            .name("tessera-encode".into())
            .spawn(move || {
                let mut writer = take
                    .recv()
                    .map_err(|_| ParquetError::General("no writer handed over".into()))?;
                // Each write in the pool, not the loop: a thread waiting for batches must not
                // hold a pool thread (with one, another file's encoding would never run).
                for batches in rx {
                    pool.install(|| writer.write(&batches))?;
                }
                pool.install(|| writer.into_inner())
            });
        match spawned {
            // The channel has room for the writer: a send fails only if the thread is gone,
            // and then the writer comes back with the error.
            Ok(thread) => match give.send(writer) {
                Ok(()) => Ok(PipedWriter {
                    tx: Some(tx),
                    thread: Some(thread),
                }),
                Err(back) => {
                    let _ = thread.join();
                    Err(back.0)
                }
            },
            Err(_) => Err(writer),
        }
    }
}

impl<W: Write + Send> PipedWriter<W> {
    /// Queue `batches` for encoding, in order after the ones before.
    ///
    /// # Errors
    /// The error that stopped the encoding thread (an earlier batch's, reported now).
    pub(crate) fn write(&mut self, batches: Vec<RecordBatch>) -> Result<()> {
        let Some(tx) = &self.tx else {
            return Err(ParquetError::General("encoding already stopped".into()));
        };
        if tx.send(batches).is_err() {
            // The thread stopped on an error: report it.
            self.tx = None;
            return Err(self
                .join()
                .err()
                .unwrap_or_else(|| ParquetError::General("encoding stopped".into())));
        }
        Ok(())
    }

    /// Encode what is queued, close the file and return the writer.
    ///
    /// # Errors
    /// The Parquet or I/O error of the encoding thread.
    pub(crate) fn into_inner(mut self) -> Result<W> {
        self.tx = None;
        self.join()
    }

    fn join(&mut self) -> Result<W> {
        let t = self
            .thread
            .take()
            .ok_or_else(|| ParquetError::General("encoding thread already joined".into()))?;
        t.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    }
}

impl<W: Write + Send> Drop for PipedWriter<W> {
    /// A writer dropped unfinished (an error elsewhere) still waits for its thread, so that no
    /// thread outlives it writing into a file being discarded.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The pool the encoding threads' column tasks run on: as many threads as the global pool,
/// created on first use (`None` when its threads cannot be started).
fn encode_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(rayon::current_num_threads())
            .thread_name(|i| format!("tessera-encode-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema, SchemaRef};
    use parquet::file::properties::WriterProperties;
    use std::sync::Arc;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("s", DataType::Utf8, false),
        ]))
    }

    fn batch(start: i64, n: i64) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int64Array::from_iter_values(start..start + n)),
                Arc::new(StringArray::from_iter_values(
                    (start..start + n).map(|i| format!("r{}", i % 97)),
                )),
            ],
        )
        .unwrap()
    }

    fn piped<W: Write + Send + 'static>(w: W) -> PipedWriter<W> {
        let writer = ColumnParallelWriter::try_new(w, &schema(), props()).unwrap();
        PipedWriter::new(Box::new(writer)).ok().unwrap()
    }

    fn props() -> WriterProperties {
        WriterProperties::builder()
            .set_max_row_group_row_count(Some(1500))
            .build()
    }

    #[test]
    fn rule_a_piped_writer_writes_the_bytes_of_the_direct_one() {
        let mut direct = ColumnParallelWriter::try_new(Vec::new(), &schema(), props()).unwrap();
        let mut piped = piped(Vec::new());
        // Groups of batches straddling row groups, written one after another.
        for (k, n) in [1000, 0, 2500, 1, 4096, 999].into_iter().enumerate() {
            let group = vec![batch(k as i64 * 10_000, n), batch(k as i64 * 10_000 + n, 7)];
            direct.write(&group).unwrap();
            piped.write(group).unwrap();
        }
        let (a, b) = (direct.into_inner().unwrap(), piped.into_inner().unwrap());
        assert!(a.len() > 1000);
        assert_eq!(a, b);
    }

    /// Accepts `left` bytes, then fails every write.
    struct Failing {
        left: usize,
    }

    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.left < buf.len() {
                return Err(std::io::Error::other("disk full"));
            }
            self.left -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn rule_an_encoding_error_is_reported_by_a_later_write_or_the_finish_not_lost() {
        let w = Failing { left: 4000 };
        let mut piped = piped(w);
        let mut first_err = None;
        for k in 0..20 {
            if let Err(e) = piped.write(vec![batch(k * 2000, 2000)]) {
                first_err = Some(e);
                break;
            }
        }
        let err = match first_err {
            Some(e) => e,
            None => piped.into_inner().err().expect("the file cannot be finished"),
        };
        assert!(err.to_string().contains("disk full"), "{err}");
    }

    #[test]
    fn rule_a_piped_writer_dropped_unfinished_waits_for_its_thread() {
        let mut piped = piped(Vec::new());
        piped.write(vec![batch(0, 3000)]).unwrap();
        drop(piped);
    }
}
