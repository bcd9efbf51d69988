//! `tessera sql` and `tessera tables`: DataFusion over the lake.

use anyhow::{bail, Context, Result};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use std::path::{Path, PathBuf};

/// Output format of `tessera sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header.
    Csv,
    /// A JSON array of objects.
    Json,
    /// Parquet (needs --output).
    Parquet,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

async fn run_query(ctx: &SessionContext, q: &str) -> Result<Vec<RecordBatch>> {
    Ok(ctx.sql(q).await?.collect().await?)
}

fn render(batches: &[RecordBatch], format: Format) -> Result<Vec<u8>> {
    Ok(match format {
        Format::Table => {
            let mut s = datafusion::arrow::util::pretty::pretty_format_batches(batches)?.to_string();
            s.push('\n');
            s.into_bytes()
        }
        Format::Csv => {
            let mut buf = Vec::new();
            {
                let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(&mut buf);
                for b in batches {
                    w.write(b)?;
                }
            }
            buf
        }
        Format::Json => {
            let mut buf = Vec::new();
            {
                let mut w = arrow::json::ArrayWriter::new(&mut buf);
                for b in batches {
                    w.write(b)?;
                }
                w.finish()?;
            }
            if buf.is_empty() {
                buf.extend_from_slice(b"[]");
            }
            buf.push(b'\n');
            buf
        }
        Format::Parquet => {
            let Some(first) = batches.first() else {
                bail!("the query returned no batch to write")
            };
            tessera::io::to_parquet(&first.schema(), batches)?
        }
    })
}

/// `tessera sql --lake DIR [QUERY]`.
pub fn sql(lake: &Path, query: Option<String>, format: Format, output: Option<PathBuf>) -> Result<()> {
    if !lake.join("epochs").is_dir() {
        bail!("{} is not a tessera lake (no epochs/ directory)", lake.display());
    }
    let rt = runtime()?;
    let ctx = rt.block_on(tessera_sql::session(lake))?;
    if let Some(q) = query {
        let batches = rt
            .block_on(run_query(&ctx, &q))
            .with_context(|| format!("query: {q}"))?;
        let bytes = render(&batches, format)?;
        match output {
            Some(p) => tessera::lake::write_atomic(&p, &bytes)?,
            None => {
                if format == Format::Parquet {
                    bail!("--format parquet needs --output FILE");
                }
                use std::io::Write;
                std::io::stdout().write_all(&bytes)?;
            }
        }
        return Ok(());
    }
    repl(&rt, &ctx)
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
                println!(
                    "{name}: {}",
                    cols.iter().map(|c| c.0.as_str()).collect::<Vec<_>>().join(", ")
                );
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
        match rt.block_on(run_query(ctx, q.trim().trim_end_matches(';'))) {
            Ok(b) => print!("{}", String::from_utf8_lossy(&render(&b, Format::Table)?)),
            Err(e) => eprintln!("error: {e:#}"),
        }
    }
    if let Some(h) = &history {
        let _ = ed.save_history(h);
    }
    Ok(())
}

/// `tessera tables --lake DIR`.
pub fn tables(lake: &Path) -> Result<()> {
    if !lake.join("epochs").is_dir() {
        bail!("{} is not a tessera lake (no epochs/ directory)", lake.display());
    }
    let rt = runtime()?;
    let ctx = rt.block_on(tessera_sql::session(lake))?;
    for (name, cols) in rt.block_on(tessera_sql::describe(&ctx))? {
        println!("{name}");
        for (c, t) in cols {
            println!("  {c:<16} {t}");
        }
    }
    Ok(())
}
