//! A DataFusion session over a lake. Tables:
//!
//! | table | rows | from |
//! | --- | --- | --- |
//! | `fixes` | normalized fixes of committed sources | `fixes/<source>.parquet` |
//! | `ingest_rejections` | lines rejected at ingest | `rejections/<source>.parquet` |
//! | `imu` | IMU readings of camera sources (device, time µs, sensor, x, y, z, line) | `imu/<source>.parquet` |
//! | `sources` | one per ingested source (device, name, counts, time range, receipt time; camera telemetry kind, clock, axes) | `sources/*.json` |
//! | `rewards` | one per recipient and epoch | `epochs/E/rewards.parquet` |
//! | `explain` (alias `visits`) | one per scored visit and epoch | `epochs/E/explain.parquet` |
//! | `rejections` | fixes rejected by an epoch's gates, trace checks, registry | `epochs/E/rejections.parquet` |
//! | `coverage` | coverage state after each epoch | `epochs/E/coverage.parquet` |
//! | `manifests` | one per epoch (pool, allocated, root, counts) | `epochs/E/manifest.json` |
//!
//! Every epoch table has an `epoch` column. It is a partition column: each epoch's file is its own
//! scan under a `UNION ALL` with the epoch as a constant, so `WHERE epoch = '2026-W47'` is folded
//! at planning time and reads only that epoch's file.

use crate::h3;
use datafusion::arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;
use std::path::Path;
use std::sync::Arc;
use tessera::epoch::Epoch;
use tessera::lake::Lake;
use tessera::manifest::Manifest;

/// Epoch tables: name in SQL, file in `epochs/E/`, schema.
pub fn epoch_tables() -> Vec<(&'static str, &'static str, SchemaRef)> {
    vec![
        ("rewards", "rewards.parquet", tessera::tables::rewards_schema()),
        ("explain", "explain.parquet", tessera::tables::explain_schema()),
        ("rejections", "rejections.parquet", tessera::tables::rejections_schema()),
        ("coverage", "coverage.parquet", tessera::tables::coverage_schema()),
        ("flags", "flags.parquet", tessera::tables::flags_schema()),
        ("trust", "trust.parquet", tessera::tables::trust_schema()),
        ("regions", "regions.parquet", tessera::tables::regions_schema()),
        ("places", "places.parquet", tessera::tables::places_schema()),
    ]
}

fn ext(e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::External(e.to_string().into())
}

fn listing(ctx: &SessionContext, dir: &Path, schema: SchemaRef, single_file: bool) -> Result<Arc<ListingTable>> {
    let url = if single_file {
        ListingTableUrl::parse(dir.to_string_lossy())?
    } else {
        ListingTableUrl::parse(format!("{}/", dir.display()))?
    };
    let opts = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let _ = ctx;
    let cfg = ListingTableConfig::new(url)
        .with_listing_options(opts)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(cfg)?))
}

/// A table over `<root>/<dir>/<hash>.parquet` of the committed sources (an empty table when
/// there are none).
fn committed_files(
    root: &Path,
    dir: &str,
    hashes: &[String],
    schema: SchemaRef,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
    if hashes.is_empty() {
        return Ok(Arc::new(MemTable::try_new(schema, vec![vec![]])?));
    }
    let urls = hashes
        .iter()
        .map(|h| ListingTableUrl::parse(root.join(dir).join(format!("{h}.parquet")).to_string_lossy()))
        .collect::<datafusion::error::Result<Vec<_>>>()?;
    let opts = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let cfg = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(opts)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(cfg)?))
}

fn with_epoch(schema: &SchemaRef) -> SchemaRef {
    let mut f = vec![Field::new("epoch", DataType::Utf8, false)];
    f.extend(schema.fields().iter().map(|x| x.as_ref().clone()));
    Arc::new(Schema::new(f))
}

fn hidden(name: &str, e: &Epoch) -> String {
    format!("__{name}_{}", e.to_string().replace('-', "_"))
}

/// A session over the lake at `root` with every table and the H3 functions registered.
pub async fn session(root: &Path) -> Result<SessionContext> {
    let lake = Lake::open(root).map_err(ext)?;
    let ctx = SessionContext::new();
    h3::register(&ctx);
    // Only sources whose metadata landed exist: files a killed writer left are not rows.
    let metas = lake.sources().map_err(ext)?;
    let with_imu: Vec<String> = metas.iter().filter(|m| m.imu > 0).map(|m| m.hash.clone()).collect();
    // A source without rejections has no report file (older lakes have an empty one: same rows).
    let with_rejections: Vec<String> = metas
        .iter()
        .filter(|m| !m.rejected_by_reason.is_empty())
        .map(|m| m.hash.clone())
        .collect();
    let committed: Vec<String> = metas.into_iter().map(|m| m.hash).collect();
    ctx.register_table(
        "fixes",
        committed_files(root, "fixes", &committed, tessera::tables::fixes_schema())?,
    )?;
    ctx.register_table(
        "ingest_rejections",
        committed_files(
            root,
            "rejections",
            &with_rejections,
            tessera::tables::rejections_schema(),
        )?,
    )?;
    ctx.register_table(
        "imu",
        committed_files(root, "imu", &with_imu, tessera::tables::imu_schema())?,
    )?;
    ctx.register_table("sources", sources_table(&lake)?)?;
    let epochs = lake.epochs().map_err(ext)?;
    for (name, file, schema) in epoch_tables() {
        let mut branches = Vec::new();
        for e in &epochs {
            let path = lake.epoch_dir(e).join(file);
            if path.exists() {
                let t = hidden(name, e);
                ctx.register_table(t.as_str(), listing(&ctx, &path, schema.clone(), true)?)?;
                branches.push(format!("SELECT '{e}' AS epoch, * FROM {t}"));
            }
        }
        if branches.is_empty() {
            ctx.register_table(name, Arc::new(MemTable::try_new(with_epoch(&schema), vec![vec![]])?))?;
        } else {
            ctx.sql(&format!("CREATE VIEW {name} AS {}", branches.join(" UNION ALL ")))
                .await?;
        }
    }
    ctx.sql("CREATE VIEW visits AS SELECT * FROM explain").await?;
    ctx.register_table("manifests", manifests_table(&lake, &epochs)?)?;
    Ok(ctx)
}

fn sources_table(lake: &Lake) -> Result<Arc<MemTable>> {
    let metas = lake.sources().map_err(ext)?;
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("device", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("format", DataType::Utf8, false),
        Field::new("bytes", DataType::UInt64, false),
        Field::new("lines", DataType::UInt64, false),
        Field::new("fixes", DataType::UInt64, false),
        Field::new("rejected", DataType::UInt64, false),
        Field::new("min_time", ts.clone(), true),
        Field::new("max_time", ts.clone(), true),
        Field::new("received_at", ts, true),
        Field::new("imu", DataType::UInt64, false),
        Field::new("telemetry", DataType::Utf8, true),
        Field::new("clock", DataType::Utf8, true),
        Field::new("axes", DataType::Utf8, true),
    ]));
    let s = |f: fn(&tessera::lake::SourceMeta) -> String| -> ArrayRef {
        Arc::new(StringArray::from(metas.iter().map(f).collect::<Vec<_>>()))
    };
    let u = |f: fn(&tessera::lake::SourceMeta) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from(metas.iter().map(f).collect::<Vec<_>>()))
    };
    let o = |f: fn(&tessera::lake::SourceMeta) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(metas.iter().map(f).collect::<Vec<_>>()))
    };
    let t = |f: fn(&tessera::lake::SourceMeta) -> Option<i64>| -> ArrayRef {
        Arc::new(TimestampMillisecondArray::from(metas.iter().map(f).collect::<Vec<_>>()).with_timezone("UTC"))
    };
    let cols = vec![
        s(|m| m.hash.clone()),
        s(|m| m.device.clone()),
        s(|m| m.name.clone()),
        s(|m| m.format.as_str().to_string()),
        u(|m| m.bytes),
        u(|m| m.lines.total),
        u(|m| m.fixes),
        u(|m| m.rejected),
        t(|m| m.min_time_ms),
        t(|m| m.max_time_ms),
        t(|m| {
            let at = m.received_at.as_deref()?;
            chrono::DateTime::parse_from_rfc3339(at)
                .ok()
                .map(|t| t.timestamp_millis())
        }),
        u(|m| m.imu),
        o(|m| m.telemetry.as_ref().map(|t| t.kind.clone())),
        o(|m| m.telemetry.as_ref().map(|t| t.clock.clone())),
        o(|m| m.telemetry.as_ref().map(|t| t.axes.clone())),
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

fn manifests_table(lake: &Lake, epochs: &[Epoch]) -> Result<Arc<MemTable>> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("epoch", DataType::Utf8, false),
        Field::new("pool", DataType::Decimal128(38, 0), false),
        Field::new("allocated", DataType::Decimal128(38, 0), false),
        Field::new("status", DataType::Utf8, false),
        Field::new("recipients", DataType::Int64, false),
        Field::new("merkle_root", DataType::Utf8, true),
        Field::new("policy_sha256", DataType::Utf8, false),
        Field::new("fixes_in", DataType::Int64, false),
        Field::new("fixes_accepted", DataType::Int64, false),
        Field::new("visits", DataType::Int64, false),
        Field::new("cells", DataType::Int64, false),
        Field::new("new_cells", DataType::Int64, false),
    ]));
    let mut m = Vec::new();
    for e in epochs {
        let p = lake.epoch_dir(e).join("manifest.json");
        m.push(tessera::audit::read_manifest(&p).map_err(|x| ext(x.to_string()))?);
    }
    let s = |f: &dyn Fn(&Manifest) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(m.iter().map(f).collect::<Vec<_>>()))
    };
    let i = |f: &dyn Fn(&Manifest) -> u64| -> ArrayRef {
        Arc::new(Int64Array::from(
            m.iter()
                .map(|v| i64::try_from(f(v)).unwrap_or(i64::MAX))
                .collect::<Vec<_>>(),
        ))
    };
    let dec = |f: &dyn Fn(&Manifest) -> &str| -> Result<ArrayRef> {
        let vals: Vec<i128> = m
            .iter()
            .map(|v| {
                f(v).parse()
                    .map_err(|_| ext(format!("epoch {}: amount {:?} is not an integer", v.epoch, f(v))))
            })
            .collect::<Result<_>>()?;
        Ok(Arc::new(
            datafusion::arrow::array::Decimal128Array::from(vals).with_precision_and_scale(38, 0)?,
        ))
    };
    let cols = vec![
        s(&|v| Some(v.epoch.clone())),
        dec(&|v| &v.pool)?,
        dec(&|v| &v.allocated)?,
        s(&|v| Some(v.status.as_str().to_string())),
        i(&|v| v.recipients),
        s(&|v| v.merkle.root.clone()),
        s(&|v| Some(v.policy_sha256.clone())),
        i(&|v| v.counts.fixes_in),
        i(&|v| v.counts.fixes_accepted),
        i(&|v| v.counts.visits),
        i(&|v| v.counts.cells),
        i(&|v| v.counts.new_cells),
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

/// Every table and its columns, for `tessera tables`.
pub async fn describe(ctx: &SessionContext) -> Result<Vec<(String, Vec<(String, String)>)>> {
    let mut out = Vec::new();
    for name in [
        "fixes",
        "sources",
        "ingest_rejections",
        "imu",
        "rewards",
        "explain",
        "visits",
        "rejections",
        "coverage",
        "flags",
        "trust",
        "regions",
        "places",
        "manifests",
    ] {
        let df = ctx.table(name).await?;
        let cols = df
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string()))
            .collect();
        out.push((name.to_string(), cols));
    }
    Ok(out)
}
