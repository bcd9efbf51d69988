//! The earlier epochs' fingerprints (`epochs/E/fingerprints.parquet` of the last
//! `trust.copies.history_epochs` epochs), read one trace at a time for the copy search: the files
//! are merged by (source hash, device) — a source's rows are consecutive in each file, in source
//! hash order — so a trace whose anchors lie in two epochs comes out once, whole. Held at a time:
//! one record batch and one trace per file, plus the chunks of traces the caller asks for (a
//! billion-fix week has ~5·10^7 anchors: four weeks of them, held and indexed with the current
//! week's, would take ~6 GB).
//!
//! Every anchor must lie in its file's epoch window (`write_fingerprints` writes only fixes of
//! the window): a file with one outside it is an error naming the file, the trace and the time,
//! rather than times that could overflow the copy search's arithmetic.
//!
//! A file written in another order (never by `write_fingerprints`, which writes in source hash
//! order) is read whole instead, held whole, and gives the same traces: [`Halt::Disorder`] tells the caller to start again with
//! that file in `whole`.

use crate::ingest::receipt::fmt_ms;
use crate::lake::Error;
use crate::tables;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Range;
use std::path::PathBuf;

/// One earlier trace: its anchors `(cell, time ms)` in time order.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PastTrace {
    pub device: String,
    pub source: String,
    pub anchors: Vec<(u64, i64)>,
}

impl PastTrace {
    /// The merge order: source hash, then device.
    fn key(&self) -> (&str, &str) {
        (&self.source, &self.device)
    }
}

/// Why reading stopped.
#[derive(Debug)]
pub(super) enum Halt {
    /// A file could not be read or decoded.
    Error(Error),
    /// File `.0` (an index into the paths given) is not in (source, device) order.
    Disorder(usize),
}

impl From<Error> for Halt {
    fn from(e: Error) -> Halt {
        Halt::Error(e)
    }
}

/// The traces of one file in (source, device) order.
enum FileTraces {
    /// Read a batch at a time: `open` is the last trace begun (it may go on in the next batch).
    Streamed {
        path: PathBuf,
        window: Range<i64>,
        reader: Option<ParquetRecordBatchReader>,
        ready: VecDeque<PastTrace>,
        open: Option<PastTrace>,
    },
    /// Read whole and sorted (a file not in order).
    Whole(std::collections::btree_map::IntoIter<(String, String), Vec<(u64, i64)>>),
}

fn data(path: &std::path::Path, message: String) -> Error {
    Error::Data {
        path: path.display().to_string(),
        message,
    }
}

/// One anchor row borrowed from a record batch: (device, source, segment, cell, time ms).
type Row<'a> = (&'a str, &'a str, u32, u64, i64);

/// `row` of the file `path`, checked to lie in the file's epoch `window`.
fn in_window<'a>(path: &std::path::Path, window: &Range<i64>, row: Row<'a>) -> Result<Row<'a>, Error> {
    let (device, source, _, _, t) = row;
    if window.contains(&t) {
        return Ok(row);
    }
    Err(data(
        path,
        format!(
            "anchor of source {source} (device {device}) at {} (time {t}) is outside the epoch window [{}, {})",
            fmt_ms(t),
            fmt_ms(window.start),
            fmt_ms(window.end)
        ),
    ))
}

fn reader(path: &std::path::Path) -> Result<ParquetRecordBatchReader, Error> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(tables::BATCH_ROWS).build())
        .map_err(|e| data(path, e.to_string()))
}

impl FileTraces {
    fn streamed(path: PathBuf, window: Range<i64>) -> Result<FileTraces, Error> {
        Ok(FileTraces::Streamed {
            reader: Some(reader(&path)?),
            path,
            window,
            ready: VecDeque::new(),
            open: None,
        })
    }

    /// The whole file, its rows grouped by (source, device) in file order.
    fn whole(path: PathBuf, window: Range<i64>) -> Result<FileTraces, Error> {
        let mut all: BTreeMap<(String, String), Vec<(u64, i64)>> = BTreeMap::new();
        for b in reader(&path)? {
            let b = b.map_err(|e| data(&path, e.to_string()))?;
            for row in tables::fingerprints_rows_of(&b).map_err(|m| data(&path, m))? {
                let (device, source, _seg, cell, t) = in_window(&path, &window, row)?;
                all.entry((source.to_string(), device.to_string()))
                    .or_default()
                    .push((cell, t));
            }
        }
        Ok(FileTraces::Whole(all.into_iter()))
    }

    /// The next trace (anchors in file order), or `None` at the end.
    fn next(&mut self) -> Result<Option<PastTrace>, Error> {
        let (path, window, reader, ready, open) = match self {
            FileTraces::Whole(it) => {
                return Ok(it.next().map(|((source, device), anchors)| PastTrace {
                    device,
                    source,
                    anchors,
                }))
            }
            FileTraces::Streamed {
                path,
                window,
                reader,
                ready,
                open,
            } => (path, window, reader, ready, open),
        };
        loop {
            if let Some(t) = ready.pop_front() {
                return Ok(Some(t));
            }
            let Some(r) = reader else {
                return Ok(open.take());
            };
            let Some(b) = r.next() else {
                *reader = None;
                continue;
            };
            let b = b.map_err(|e| data(path, e.to_string()))?;
            for row in tables::fingerprints_rows_of(&b).map_err(|m| data(path, m))? {
                let (device, source, _seg, cell, t) = in_window(path, window, row)?;
                match open {
                    Some(o) if o.source == source && o.device == device => o.anchors.push((cell, t)),
                    _ => {
                        ready.extend(open.take());
                        *open = Some(PastTrace {
                            device: device.to_string(),
                            source: source.to_string(),
                            anchors: vec![(cell, t)],
                        });
                    }
                }
            }
        }
    }
}

/// The earlier traces of several fingerprints files, merged by (source, device).
pub(super) struct History {
    files: Vec<FileTraces>,
    /// Each file's next trace.
    heads: Vec<Option<PastTrace>>,
    /// The key of the last trace each file gave (to check its order).
    last: Vec<Option<(String, String)>>,
}

impl History {
    /// Open `files`, each a fingerprints file and its epoch's window in UTC ms (newest epoch
    /// first: a trace's anchors are gathered in that order before being put in time order); the
    /// files in `whole` (indices into `files`) are read whole.
    ///
    /// # Errors
    /// A file that cannot be opened or decoded, or with an anchor outside its window
    /// ([`Halt::Error`], naming it), or one out of order ([`Halt::Disorder`]).
    pub fn open(files: &[(PathBuf, Range<i64>)], whole: &BTreeSet<usize>) -> Result<History, Halt> {
        let files = files
            .iter()
            .enumerate()
            .map(|(i, (p, w))| {
                if whole.contains(&i) {
                    FileTraces::whole(p.clone(), w.clone())
                } else {
                    FileTraces::streamed(p.clone(), w.clone())
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut h = History {
            heads: vec![None; files.len()],
            last: vec![None; files.len()],
            files,
        };
        for i in 0..h.files.len() {
            h.advance(i)?;
        }
        Ok(h)
    }

    /// Read file `i`'s next trace into its head, checking the file's order.
    fn advance(&mut self, i: usize) -> Result<(), Halt> {
        let next = self.files[i].next()?;
        if let Some(t) = &next {
            if self.last[i]
                .as_ref()
                .is_some_and(|l| (l.0.as_str(), l.1.as_str()) >= t.key())
            {
                return Err(Halt::Disorder(i));
            }
            self.last[i] = Some((t.source.clone(), t.device.clone()));
        }
        self.heads[i] = next;
        Ok(())
    }

    /// The next earlier trace in (source, device) order, its anchors from every file in time
    /// order; `None` after the last.
    ///
    /// # Errors
    /// As [`History::open`].
    pub fn next_trace(&mut self) -> Result<Option<PastTrace>, Halt> {
        let Some(key) = self.heads.iter().flatten().map(PastTrace::key).min() else {
            return Ok(None);
        };
        let key = (key.0.to_string(), key.1.to_string());
        let mut out: Option<PastTrace> = None;
        for i in 0..self.heads.len() {
            if self.heads[i]
                .as_ref()
                .is_some_and(|t| t.key() == (key.0.as_str(), key.1.as_str()))
            {
                let t = self.heads[i].take().expect("head checked above");
                match &mut out {
                    Some(o) => o.anchors.extend(t.anchors),
                    None => out = Some(t),
                }
                self.advance(i)?;
            }
        }
        let mut out = out.expect("the smallest head has the key");
        out.anchors.sort_unstable_by_key(|x| x.1);
        Ok(Some(out))
    }

    /// Traces until they hold at least `anchors` anchors, or the rest; empty after the last.
    ///
    /// # Errors
    /// As [`History::open`].
    pub fn next_chunk(&mut self, anchors: usize) -> Result<Vec<PastTrace>, Halt> {
        let (mut out, mut n) = (Vec::new(), 0);
        while n < anchors {
            let Some(t) = self.next_trace()? else { break };
            n += t.anchors.len();
            out.push(t);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `read_history` did before it streamed: every row of every file into one map keyed by
    /// (device, source), in the order of `paths`, then each trace put in time order.
    fn all_at_once(paths: &[PathBuf]) -> Vec<PastTrace> {
        let mut out: BTreeMap<(String, String), Vec<(u64, i64)>> = BTreeMap::new();
        for p in paths {
            for b in reader(p).unwrap() {
                for (device, source, _, cell, t) in tables::fingerprints_rows_of(&b.unwrap()).unwrap() {
                    out.entry((device.into(), source.into())).or_default().push((cell, t));
                }
            }
        }
        let mut v: Vec<PastTrace> = out
            .into_iter()
            .map(|((device, source), mut anchors)| {
                anchors.sort_unstable_by_key(|x| x.1);
                PastTrace {
                    device,
                    source,
                    anchors,
                }
            })
            .collect();
        v.sort_by(|a, b| a.key().cmp(&b.key()));
        v
    }

    fn write(path: &std::path::Path, rows: &[(String, tables::AnchorRow)]) {
        let batches: Vec<_> = rows
            .chunks(tables::BATCH_ROWS)
            .map(tables::fingerprints_batch)
            .collect();
        let batches = if batches.is_empty() {
            vec![tables::fingerprints_batch(&[])]
        } else {
            batches
        };
        std::fs::write(
            path,
            tables::to_parquet(&tables::fingerprints_schema(), &batches).unwrap(),
        )
        .unwrap();
    }

    /// Read all, starting again with a file read whole when one is out of order (as the trust
    /// stage does).
    fn streamed(paths: &[PathBuf]) -> (Vec<PastTrace>, BTreeSet<usize>) {
        let files: Vec<_> = paths.iter().map(|p| (p.clone(), 0..5_000)).collect();
        let mut whole = BTreeSet::new();
        'again: loop {
            let mut h = match History::open(&files, &whole) {
                Ok(h) => h,
                Err(Halt::Disorder(i)) => {
                    assert!(whole.insert(i));
                    continue;
                }
                Err(Halt::Error(e)) => panic!("{e}"),
            };
            let mut out = Vec::new();
            loop {
                match h.next_chunk(1000) {
                    Ok(c) if c.is_empty() => return (out, whole),
                    Ok(c) => out.extend(c),
                    Err(Halt::Disorder(i)) => {
                        assert!(whole.insert(i));
                        continue 'again;
                    }
                    Err(Halt::Error(e)) => panic!("{e}"),
                }
            }
        }
    }

    #[test]
    fn rule_earlier_traces_merged_across_epochs_one_at_a_time_are_the_traces_read_whole() {
        let d = tempfile::tempdir().unwrap();
        let mut rng = crate::test_rng::xorshift(0x2545_F491_4F6C_DD1D);
        let mut next = |n: u64| rng() % n;
        // 4 epochs' files: 60 sources spread over them (some in several epochs), runs of rows
        // crossing the 65,536-row batches, equal times; file 2 written out of source order.
        let mut paths = Vec::new();
        for e in 0..4 {
            let mut rows: Vec<(String, tables::AnchorRow)> = Vec::new();
            for s in (0..60u64).filter(|s| (s + e) % 3 != 0) {
                let n = if s % 17 == 0 { 70_000 } else { next(500) };
                let (dev, src) = (
                    format!("car-{}", s % 7),
                    format!("{:016x}", s.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                );
                rows.extend((0..n).map(|_| (dev.clone(), (src.clone(), 0, next(40), next(5_000) as i64))));
            }
            rows.sort_by(|a, b| (&a.1 .0, a.1 .1, a.1 .3, a.1 .2).cmp(&(&b.1 .0, b.1 .1, b.1 .3, b.1 .2)));
            if e == 2 {
                rows.reverse();
            }
            let p = d.path().join(format!("f{e}.parquet"));
            write(&p, &rows);
            paths.push(p);
        }
        write(&d.path().join("empty.parquet"), &[]);
        paths.push(d.path().join("empty.parquet"));
        let (got, whole) = streamed(&paths);
        assert_eq!(whole, BTreeSet::from([2]));
        let want = all_at_once(&paths);
        assert_eq!(got.len(), 60);
        assert!(got == want, "the merged traces differ");
        // one file in order alone streams without being read whole
        let (got, whole) = streamed(&paths[..1]);
        assert!(whole.is_empty());
        assert!(got == all_at_once(&paths[..1]));
    }

    #[test]
    fn a_broken_fingerprints_file_is_an_error_naming_it() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("fingerprints.parquet");
        std::fs::write(&p, b"PAR1 not parquet").unwrap();
        let Err(Halt::Error(e)) = History::open(&[(p, 0..1)], &BTreeSet::new()) else {
            panic!("no error")
        };
        assert!(e.to_string().contains("fingerprints.parquet"), "{e}");
    }

    #[test]
    fn rule_an_anchor_outside_its_epoch_window_is_an_error_naming_the_file_source_and_time() {
        let d = tempfile::tempdir().unwrap();
        let week = 1_794_787_200_000..1_795_392_000_000; // 2026-W47
        let row = |src: &str, t: i64| ("car-1".to_string(), (src.to_string(), 0, 7, t));
        // in order (streamed) and out of order (read whole); the bad time first, last, or one
        // past the window's end, or where a difference with it would overflow an i64
        for (bad, reversed) in [
            (i64::MIN, false),
            (i64::MAX, true),
            (week.end, false),
            (week.start - 1, true),
        ] {
            let mut rows = vec![row("a", week.start), row("a", week.start + 1000), row("b", bad)];
            if reversed {
                rows.reverse();
            }
            let p = d.path().join("fingerprints.parquet");
            write(&p, &rows);
            let files = [(p, week.clone())];
            let whole = BTreeSet::from_iter(reversed.then_some(0));
            let e = match History::open(&files, &whole).and_then(|mut h| h.next_chunk(1000)) {
                Err(Halt::Error(e)) => e.to_string(),
                other => panic!("{bad}: not an error: {other:?}"),
            };
            for part in [
                "fingerprints.parquet",
                "source b",
                "car-1",
                &format!("time {bad}"),
                "2026-11-16T00:00:00.000Z",
            ] {
                assert!(e.contains(part), "{part:?} not in {e}");
            }
        }
        // the window's first and last millisecond are inside
        let p = d.path().join("ok.parquet");
        write(&p, &[row("a", week.start), row("a", week.end - 1)]);
        let mut h = History::open(&[(p, week.clone())], &BTreeSet::new()).unwrap();
        assert_eq!(h.next_chunk(10).unwrap()[0].anchors.len(), 2);
    }
}
