//! `tessera export cells`: an epoch's cells as GeoParquet 1.1.

use crate::cli::EpochArg;
use crate::output::print_json;
use anyhow::Result;
use std::path::Path;

pub fn cells(at: &EpochArg, output: &Path, json: bool) -> Result<()> {
    let lake = super::open_lake(&at.lake)?;
    let bytes = tessera::geoparquet::export_cells(&lake, &at.epoch)?;
    tessera::lake::write_atomic(output, &bytes)?;
    if json {
        return print_json(&serde_json::json!({"output": output, "bytes": bytes.len(), "epoch": at.epoch.to_string()}));
    }
    println!(
        "wrote {} ({} bytes) with the cells of {}",
        output.display(),
        bytes.len(),
        at.epoch
    );
    Ok(())
}
