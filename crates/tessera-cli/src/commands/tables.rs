//! `tessera tables`: the lake's SQL tables and their columns.

use crate::cli::LakeArg;
use anyhow::Result;

#[cfg(not(feature = "sql"))]
pub fn run(_: &LakeArg, _: bool) -> Result<()> {
    anyhow::bail!(super::sql::NO_SQL)
}

#[cfg(feature = "sql")]
pub fn run(lake: &LakeArg, json: bool) -> Result<()> {
    let (rt, ctx) = super::sql::engine::open(lake)?;
    let tables = rt.block_on(tessera_sql::describe(&ctx))?;
    if json {
        let v: Vec<_> = tables
            .iter()
            .map(|(name, cols)| serde_json::json!({"table": name, "columns": cols.iter().map(|(c, t)| serde_json::json!({"name": c, "type": t})).collect::<Vec<_>>()}))
            .collect();
        return crate::output::print_json(&v);
    }
    for (name, cols) in tables {
        println!("{name}");
        for (c, t) in cols {
            println!("  {c:<16} {t}");
        }
    }
    Ok(())
}
