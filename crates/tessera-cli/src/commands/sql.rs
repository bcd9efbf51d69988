//! `tessera sql`: DataFusion over the lake, one query or an interactive prompt. Also the engine
//! helpers `tessera tables` uses. A build without the `sql` feature says how to get it.

use crate::cli::{LakeArg, SqlFormat};
use anyhow::Result;
use std::path::Path;

/// What a build without DataFusion answers.
#[cfg(not(feature = "sql"))]
pub const NO_SQL: &str = "this tessera was built without SQL (--no-default-features); build it with `cargo build --release -p tessera-cli` (default features) or `cargo install --path crates/tessera-cli`";

#[cfg(not(feature = "sql"))]
pub fn run(_: &LakeArg, _: Option<String>, _: SqlFormat, _: Option<&Path>, _: bool) -> Result<()> {
    anyhow::bail!(NO_SQL)
}

#[cfg(feature = "sql")]
pub use engine::run;

#[cfg(feature = "sql")]
pub mod engine {
    use super::*;
    use anyhow::{bail, Context};
    use datafusion::arrow::array::{ArrayRef, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::prelude::SessionContext;
    use std::path::PathBuf;
    use std::sync::Arc;

    /// A runtime and a session over an existing lake.
    pub fn open(lake: &LakeArg) -> Result<(tokio::runtime::Runtime, SessionContext)> {
        super::super::open_lake(lake)?;
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        let ctx = rt.block_on(tessera_sql::session(&lake.lake))?;
        Ok((rt, ctx))
    }

    async fn query(ctx: &SessionContext, q: &str) -> Result<Vec<RecordBatch>> {
        Ok(ctx.sql(q).await?.collect().await?)
    }

    /// Decimal columns (amounts, points) as decimal strings, so no JSON reader rounds them.
    fn decimals_as_strings(b: &RecordBatch) -> Result<RecordBatch> {
        let mut fields = Vec::new();
        let mut cols: Vec<ArrayRef> = Vec::new();
        for (f, c) in b.schema().fields().iter().zip(b.columns()) {
            if matches!(f.data_type(), DataType::Decimal128(..) | DataType::Decimal256(..)) {
                cols.push(datafusion::arrow::compute::cast(c, &DataType::Utf8)?);
                fields.push(Field::new(f.name(), DataType::Utf8, f.is_nullable()));
            } else {
                cols.push(c.clone());
                fields.push(f.as_ref().clone());
            }
        }
        Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
    }

    fn json_bytes(batches: &[RecordBatch]) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        {
            let mut w = arrow::json::ArrayWriter::new(&mut buf);
            for b in batches {
                w.write(&decimals_as_strings(b)?)?;
            }
            w.finish()?;
        }
        if buf.is_empty() {
            buf.extend_from_slice(b"[]");
        }
        buf.push(b'\n');
        Ok(buf)
    }

    fn render(batches: &[RecordBatch], format: SqlFormat) -> Result<Vec<u8>> {
        Ok(match format {
            SqlFormat::Table => {
                let mut s = datafusion::arrow::util::pretty::pretty_format_batches(batches)?.to_string();
                s.push('\n');
                s.into_bytes()
            }
            SqlFormat::Csv => {
                let mut buf = Vec::new();
                {
                    let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(&mut buf);
                    for b in batches {
                        w.write(b)?;
                    }
                }
                buf
            }
            SqlFormat::Json => json_bytes(batches)?,
            SqlFormat::Parquet => {
                let Some(first) = batches.first() else {
                    bail!("the query returned no batch to write")
                };
                tessera::tables::to_parquet(&first.schema(), batches)?
            }
        })
    }

    /// `tessera sql --lake DIR [QUERY]`.
    pub fn run(lake: &LakeArg, q: Option<String>, format: SqlFormat, output: Option<&Path>, json: bool) -> Result<()> {
        let format = if json { SqlFormat::Json } else { format };
        if format == SqlFormat::Parquet && output.is_none() {
            bail!("--format parquet needs --output FILE");
        }
        let (rt, ctx) = open(lake)?;
        let Some(q) = q else {
            return repl(&rt, &ctx);
        };
        let batches = rt.block_on(query(&ctx, &q)).with_context(|| format!("query: {q}"))?;
        let bytes = render(&batches, format)?;
        match output {
            Some(p) => tessera::lake::write_atomic(p, &bytes)?,
            None => {
                use std::io::Write;
                std::io::stdout().write_all(&bytes)?;
            }
        }
        Ok(())
    }

    fn repl(rt: &tokio::runtime::Runtime, ctx: &SessionContext) -> Result<()> {
        let mut ed = rustyline::DefaultEditor::new()?;
        let history = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".tessera_sql_history"));
        if let Some(h) = &history {
            let _ = ed.load_history(h);
        }
        eprintln!("tessera sql: end statements with ';'. \\q quits, \\d lists tables.");
        let mut buf = String::new();
        loop {
            let prompt = if buf.is_empty() { "tessera> " } else { "     ..> " };
            let line = match ed.readline(prompt) {
                Ok(l) => l,
                Err(rustyline::error::ReadlineError::Interrupted) => {
                    buf.clear();
                    continue;
                }
                Err(_) => break,
            };
            let t = line.trim();
            if buf.is_empty() && (t == "\\q" || t == "exit" || t == "quit") {
                break;
            }
            if buf.is_empty() && t == "\\d" {
                for (name, cols) in rt.block_on(tessera_sql::describe(ctx))? {
                    let names: Vec<&str> = cols.iter().map(|c| c.0.as_str()).collect();
                    println!("{name}: {}", names.join(", "));
                }
                continue;
            }
            buf.push_str(&line);
            buf.push('\n');
            if !t.ends_with(';') {
                continue;
            }
            let q = std::mem::take(&mut buf);
            let _ = ed.add_history_entry(q.trim());
            match rt.block_on(query(ctx, q.trim().trim_end_matches(';'))) {
                Ok(b) => print!("{}", String::from_utf8_lossy(&render(&b, SqlFormat::Table)?)),
                Err(e) => eprintln!("error: {}", crate::output::error_text(&e)),
            }
        }
        if let Some(h) = &history {
            let _ = ed.save_history(h);
        }
        Ok(())
    }
}
