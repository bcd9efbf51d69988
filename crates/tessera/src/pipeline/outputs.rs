//! Writing the epoch's files: streamed Parquet sinks hashed as written, small files, the rewards
//! and explain batches, and the formats of points and times.

use super::score::PerRecipient;
use crate::lake::{io_err, sha256_hex, Error, Result};
use crate::novelty::freshness::CellState;
use crate::novelty::Scored;
use crate::rewards::Share;
use crate::tables;
use arrow_array::builder::{StringBuilder, UInt32Builder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

pub(super) fn ppm_str(v: u128) -> String {
    format!("{}.{:06}", v / 1_000_000, v % 1_000_000)
}

pub(super) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

pub(super) fn parquet_bytes(name: &str, schema: &arrow_schema::SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    tables::to_parquet(schema, batches).map_err(|e| pq_error(name, e))
}

/// A Parquet output streamed into the output directory, hashed as it is written.
pub(super) type Sink<T, B> = tables::BatchSink<T, tables::HashedFile, B>;
/// Builds explain batches from consecutive slices of rows (closes over the device and wallet
/// tables): a batch that spans two scored parts is built without copying them.
pub(super) type ExplainBuild<'a> = tables::Parts<ExplainRows<'a>>;
/// What [`ExplainBuild`] calls.
pub(super) type ExplainRows<'a> = Box<dyn Fn(&[&[Scored]]) -> RecordBatch + Send + Sync + 'a>;
/// Builds coverage batches.
pub(super) type CoverageBuild = fn(&[(u64, CellState)]) -> RecordBatch;

pub(super) fn sink<T: Clone + Send + Sync, B: Fn(&[T]) -> RecordBatch + Sync>(
    dir: &Path,
    name: &str,
    schema: &arrow_schema::SchemaRef,
    layout: tables::Layout,
    build: B,
) -> Result<Sink<T, B>> {
    let (f, file_schema) = create(dir, name, schema, layout)?;
    tables::BatchSink::with_props(f, &file_schema, layout.props(&file_schema), build).map_err(|e| pq_error(name, e))
}

/// [`sink`] with a builder of rows in consecutive slices ([`tables::BatchSink::with_parts`]).
pub(super) fn parts_sink<T: Send + Sync, F: Fn(&[&[T]]) -> RecordBatch + Sync>(
    dir: &Path,
    name: &str,
    schema: &arrow_schema::SchemaRef,
    layout: tables::Layout,
    build: F,
) -> Result<Sink<T, tables::Parts<F>>> {
    let (f, file_schema) = create(dir, name, schema, layout)?;
    tables::BatchSink::with_parts(f, &file_schema, layout.props(&file_schema), build).map_err(|e| pq_error(name, e))
}

/// The output file `name` in `dir`, created, and the schema `layout` writes `schema` with.
fn create(
    dir: &Path,
    name: &str,
    schema: &arrow_schema::SchemaRef,
    layout: tables::Layout,
) -> Result<(tables::HashedFile, arrow_schema::SchemaRef)> {
    let p = dir.join(name);
    let f = tables::HashedFile::create(&p).map_err(|source| Error::Io {
        path: p.display().to_string(),
        source,
    })?;
    Ok((f, layout.file_schema(schema)))
}

pub(super) fn pq_error(name: &str, source: parquet::errors::ParquetError) -> Error {
    Error::Parquet {
        path: name.to_string(),
        source,
    }
}

pub(super) fn finish_sink<T: Send + Sync, B: tables::BuildBatch<T>>(
    dir: &Path,
    name: &str,
    s: Sink<T, B>,
) -> Result<String> {
    let f = s.finish().map_err(|e| pq_error(name, e))?;
    let sha = f.finish().map_err(|source| Error::Io {
        path: dir.join(name).display().to_string(),
        source,
    })?;
    fail::fail_point!("epoch-staged-file");
    Ok(sha)
}

/// Write a small output file into the output directory; its SHA-256. Written in place and
/// fsynced, as the streamed Parquet files are, not through a temp file renamed in with a
/// directory fsync each. The directory is an epoch's staging directory, which
/// [`crate::lake::Lake::commit_epoch_dir`] fsyncs once and renames into place whole (a run that
/// stops before leaves one that is removed, never a published part; `commit` reads only its
/// manifest before that, to say what changed), or a temporary one that is never published
/// (`compute`, audits). An epoch wrote seven to nine small files this way, ~1 ms of renames and
/// directory fsyncs each, one after another at its end.
pub(super) fn put(dir: &Path, name: &str, bytes: &[u8]) -> Result<String> {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, bytes)?;
            f.sync_all()
        })
        .map_err(io_err(&p))?;
    fail::fail_point!("epoch-staged-file");
    Ok(sha256_hex(bytes))
}

/// [`put`] each `(name, bytes)` into `dir`, all at once (a thread each: their fsyncs wait
/// together, not one after another — ~0.8 ms each at the end of every epoch); each SHA-256
/// into `outputs` under its name.
///
/// # Errors
/// The first file's error in `files` order, as [`put`] (then nothing is added to `outputs`).
fn put_all(dir: &Path, files: &[(&str, &[u8])], outputs: &mut BTreeMap<String, String>) -> Result<()> {
    let shas = crate::lake::at_once(files, |&(name, bytes)| put(dir, name, bytes));
    let shas = shas.into_iter().collect::<Result<Vec<String>>>()?;
    for ((name, _), sha) in files.iter().zip(shas) {
        outputs.insert((*name).to_string(), sha);
    }
    Ok(())
}

fn dec(cap: usize, dt: arrow_schema::DataType) -> arrow_array::builder::Decimal128Builder {
    tables::decimal_builder(cap, &dt)
}

/// One row of `rewards.parquet`: a recipient's share of one kind (`base`, `bounty:<id>`).
pub(super) struct RewardLine<'a> {
    pub recipient: &'a str,
    pub kind: String,
    pub amount: u128,
    pub points: u128,
}

pub(super) fn rewards_batch(
    lines: &[RewardLine],
    per: &BTreeMap<&str, PerRecipient>,
    dist: &crate::merkle::Distribution,
) -> RecordBatch {
    let n = lines.len();
    let mut r = StringBuilder::new();
    let mut kind = StringBuilder::new();
    let mut amount = dec(n, tables::amount_type());
    let mut points = dec(n, tables::ppm_type());
    let mut total = dec(n, tables::amount_type());
    let mut devices = UInt32Builder::with_capacity(n);
    let mut cells = UInt64Builder::with_capacity(n);
    let mut leaf = StringBuilder::with_capacity(n, 66 * n);
    let mut proof = arrow_array::builder::ListBuilder::new(StringBuilder::new());
    let claims: BTreeMap<&str, &crate::merkle::Claim> = dist.claims.iter().map(|c| (c.recipient.as_str(), c)).collect();
    // Decimal128(38,0) holds up to 10^38-1 < 2^127: pools above that are refused at the CLI.
    let big = |x: u128| i128::try_from(x).unwrap_or(i128::MAX);
    for l in lines {
        let c = claims[l.recipient];
        leaf.append_value(&c.leaf);
        for p in &c.proof {
            proof.values().append_value(p);
        }
        proof.append(true);
        let v = &per[l.recipient];
        r.append_value(l.recipient);
        kind.append_value(&l.kind);
        amount.append_value(big(l.amount));
        points.append_value(big(l.points));
        total.append_value(big(c.amount.parse::<u128>().unwrap_or(0)));
        devices.append_value(v.devices.len() as u32);
        cells.append_value(v.cells);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(r.finish()),
        Arc::new(kind.finish()),
        Arc::new(amount.finish()),
        Arc::new(points.finish()),
        Arc::new(devices.finish()),
        Arc::new(cells.finish()),
        Arc::new(total.finish()),
        Arc::new(leaf.finish()),
        Arc::new(proof.finish()),
    ];
    RecordBatch::try_new(tables::rewards_schema(), cols).expect("schema matches")
}

/// The pool's allocation among the recipients and its merkle distribution.
pub(super) struct Allocation {
    /// The epoch pool's shares (after the cap).
    pub shares: Vec<Share>,
    /// Recipient → total amount (pool + bounties), the merkle leaves' amounts.
    pub totals: BTreeMap<String, u128>,
    pub dist: crate::merkle::Distribution,
    pub points_total: u128,
    /// Σ of the epoch pool's shares.
    pub allocated: u128,
    pub cap: Option<crate::manifest::Cap>,
    pub bounties: Vec<crate::rewards::bounty::Settlement>,
}

/// Bounties paying this epoch: (policy entry, carried in, recipient points in its area).
pub(super) type BountyInputs<'a> = Vec<(&'a crate::places::policy::BountyPolicy, u128, Vec<(String, u128)>)>;

/// Allocate the pool (capped per wallet) and each bounty over the recipients' points and write
/// `rewards.parquet`, `policy.toml`, `merkle.json` and `registry.csv` into `dir`, recording
/// each file's SHA-256 in `outputs`.
pub(super) fn allocate_and_write(
    dir: &Path,
    inputs: &super::EpochInputs,
    k: &crate::policy::Kernels,
    per: &BTreeMap<&str, PerRecipient>,
    bounties: BountyInputs,
    outputs: &mut BTreeMap<String, String>,
) -> Result<Allocation> {
    let e = inputs.epoch;
    let pts: Vec<(String, u128)> = per.iter().map(|(w, v)| (w.to_string(), v.points)).collect();
    let (shares, cap) = crate::rewards::cap::allocate_capped(inputs.pool, &pts, k.max_wallet_share)?;
    let mut lines: Vec<RewardLine> = shares
        .iter()
        .map(|s| RewardLine {
            recipient: per.get_key_value(s.recipient.as_str()).expect("recipient").0,
            kind: "base".into(),
            amount: s.amount,
            points: s.points,
        })
        .collect();
    let mut settlements = Vec::new();
    for (b, carried_in, points) in bounties {
        let (st, bshares) = crate::rewards::bounty::settle(b, e, carried_in, &points)?;
        settlements.push(st);
        for s in bshares {
            lines.push(RewardLine {
                recipient: per
                    .get_key_value(s.recipient.as_str())
                    .expect("bounty recipient has points")
                    .0,
                kind: format!("bounty:{}", b.id),
                amount: s.amount,
                points: s.points,
            });
        }
    }
    lines.sort_by(|a, b| (a.recipient, a.kind != "base", &a.kind).cmp(&(b.recipient, b.kind != "base", &b.kind)));
    let mut totals: BTreeMap<String, u128> = BTreeMap::new();
    for l in &lines {
        *totals.entry(l.recipient.to_string()).or_default() += l.amount;
    }
    let amounts: Vec<(String, u128)> = totals.iter().map(|(r, a)| (r.clone(), *a)).collect();
    let dist = crate::merkle::build(k.merkle, &amounts).map_err(|err| Error::Invalid(format!("epoch {e}: {err}")))?;
    let rewards = parquet_bytes(
        "rewards.parquet",
        &tables::rewards_schema(),
        &[rewards_batch(&lines, per, &dist)],
    )?;
    let mut dump = serde_json::to_vec_pretty(&dist.dump).expect("dump serializes");
    dump.push(b'\n');
    let registry = inputs.registry.to_csv();
    put_all(
        dir,
        &[
            ("rewards.parquet", rewards.as_slice()),
            ("policy.toml", inputs.policy_text.as_bytes()),
            ("merkle.json", &dump),
            ("registry.csv", registry.as_bytes()),
        ],
        outputs,
    )?;
    let cap = (k.max_wallet_share < crate::fixed::SCALE).then(|| crate::manifest::Cap {
        amount: cap.cap.to_string(),
        capped: cap.capped.len() as u64,
        max_wallet_share: ppm_str(u128::from(k.max_wallet_share)),
        unallocated: cap.unallocated.to_string(),
    });
    Ok(Allocation {
        points_total: pts.iter().map(|p| p.1).sum(),
        allocated: shares.iter().map(|s| s.amount).sum(),
        shares,
        totals,
        dist,
        cap,
        bounties: settlements,
    })
}

/// What the manifest records besides the counts and files.
pub(super) struct Extra {
    pub places: Option<crate::manifest::PlacesRecord>,
    pub pool_rule: Option<String>,
}

/// The manifest of a computed epoch.
pub(super) fn manifest(
    inputs: &super::EpochInputs,
    alloc: &Allocation,
    counts: crate::manifest::Counts,
    prev: Option<(crate::epoch::Epoch, String)>,
    sources: Vec<crate::manifest::Input>,
    outputs: &BTreeMap<String, String>,
    extra: Extra,
) -> crate::manifest::Manifest {
    use crate::manifest::{self, Manifest, Status};
    let e = inputs.epoch;
    Manifest {
        format: manifest::FORMAT.to_string(),
        layout: inputs.layout.manifest_field(),
        trust_rules: (inputs.trust_rules > 1).then_some(inputs.trust_rules),
        epoch: e.to_string(),
        window: manifest::Window {
            start: rfc3339(e.start_ms()),
            end: rfc3339(e.end_ms()),
        },
        pool: inputs.pool.to_string(),
        allocated: alloc.allocated.to_string(),
        bounties: alloc.bounties.clone(),
        cap: alloc.cap.clone(),
        places: extra.places,
        pool_rule: extra.pool_rule,
        status: if alloc.shares.is_empty() {
            Status::NoPoints
        } else {
            Status::Allocated
        },
        recipients: alloc.shares.len() as u64,
        points_total: ppm_str(alloc.points_total),
        merkle: manifest::Merkle {
            scheme: alloc.dist.scheme.as_str().to_string(),
            root: alloc.dist.root.clone(),
        },
        counts,
        previous_state: prev.map(|(p, sha)| manifest::PreviousState {
            epoch: p.to_string(),
            coverage_sha256: sha,
        }),
        policy_sha256: outputs["policy.toml"].clone(),
        registry_sha256: outputs["registry.csv"].clone(),
        inputs: sources,
        outputs: outputs.clone(),
        software: manifest::Software {
            name: "tessera".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
    }
}

/// The summary of an epoch: its manifest's counts and the top recipients by amount.
pub(super) fn summary(
    m: &crate::manifest::Manifest,
    shares: &[Share],
    totals: &BTreeMap<String, u128>,
    per: &BTreeMap<&str, PerRecipient>,
) -> super::Summary {
    let mut top: Vec<(&Share, u128)> = shares
        .iter()
        .map(|s| (s, totals.get(&s.recipient).copied().unwrap_or(s.amount)))
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.recipient.cmp(&b.0.recipient)));
    super::Summary {
        epoch: m.epoch.clone(),
        window_start: m.window.start.clone(),
        window_end: m.window.end.clone(),
        sources: m.counts.sources,
        fixes_in: m.counts.fixes_in,
        fixes_accepted: m.counts.fixes_accepted,
        rejected: m.counts.rejected.clone(),
        cells: m.counts.cells,
        new_cells: m.counts.new_cells,
        visits: m.counts.visits,
        recipients: m.recipients,
        pool: m.pool.clone(),
        allocated: m.allocated.clone(),
        points_total: m.points_total.clone(),
        status: m.status,
        previous_state: m.previous_state.as_ref().map(|p| p.epoch.clone()),
        pool_rule: m.pool_rule.clone(),
        cap: m.cap.clone(),
        places: m.places.clone(),
        regions: Vec::new(),
        bounties: m.bounties.clone(),
        top: top
            .into_iter()
            .map(|(s, total)| {
                let v = &per[s.recipient.as_str()];
                super::RecipientLine {
                    recipient: s.recipient.clone(),
                    amount: total.to_string(),
                    points: ppm_str(s.points),
                    devices: v.devices.len() as u32,
                    cells: v.cells,
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_small_outputs_written_at_once_are_each_on_disk_with_their_sha256() {
        let d = tempfile::tempdir().unwrap();
        let big = vec![7u8; 300_000];
        let mut outputs = BTreeMap::new();
        outputs.insert("explain.parquet".to_string(), "kept".to_string());
        let files: [(&str, &[u8]); 4] = [
            ("rewards.parquet", &big),
            ("policy.toml", b"[trust]\n"),
            ("merkle.json", b"{}\n"),
            ("registry.csv", b""),
        ];
        put_all(d.path(), &files, &mut outputs).unwrap();
        for (name, bytes) in files {
            assert_eq!(std::fs::read(d.path().join(name)).unwrap(), bytes, "{name}");
            assert_eq!(outputs[name], sha256_hex(bytes), "{name}");
        }
        assert_eq!(outputs["explain.parquet"], "kept");
        assert_eq!(outputs.len(), 5);
    }

    #[test]
    fn rule_small_outputs_that_cannot_be_written_name_the_first_file_and_record_nothing() {
        let d = tempfile::tempdir().unwrap();
        let gone = d.path().join("no-such-dir");
        let mut outputs = BTreeMap::new();
        let err = put_all(
            &gone,
            &[("rewards.parquet", b"r".as_slice()), ("policy.toml", b"p")],
            &mut outputs,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("rewards.parquet"), "{err}");
        assert!(outputs.is_empty());
    }
}
