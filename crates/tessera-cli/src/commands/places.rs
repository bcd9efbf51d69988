//! `tessera places`: build a policy's places (regions, road cells, bounty areas) and report
//! them, optionally writing `places.parquet`.

use crate::output::print_json;
use anyhow::Result;
use std::path::Path;

pub fn run(policy: &Path, output: Option<&Path>, json: bool) -> Result<()> {
    let (_, pol, places) = super::load_policy(Some(policy))?;
    let mut per_region = vec![0u64; places.regions.len()];
    for (_, r) in &places.region_cells {
        per_region[*r as usize] += 1;
    }
    let road_cells = places.roads.as_ref().map(|r| r.len());
    let road_centre = places.roads.as_ref().map(|r| r.iter().filter(|x| x.1 > 0).count());
    let km = places.road_total_mm() as f64 / 1e6;
    if let Some(out) = output {
        let batch = tessera::tables::places_batch(&places);
        let bytes = tessera::tables::to_parquet(&tessera::tables::places_schema(), &[batch])?;
        tessera::lake::write_atomic(out, &bytes)?;
    }
    if json {
        return print_json(&serde_json::json!({
            "h3_resolution": pol.h3_resolution,
            "regions": places.regions.iter().zip(&per_region).map(|(r, n)| serde_json::json!({
                "name": r.name, "weight": format!("{}.{:06}", r.weight / 1_000_000, r.weight % 1_000_000), "cells": n,
            })).collect::<Vec<_>>(),
            "road_cells": road_cells, "road_centre_cells": road_centre,
            "road_km": format!("{km:.3}"),
            "bounties": places.bounties.iter().map(|b| serde_json::json!({"id": b.id, "cells": b.cells.len()})).collect::<Vec<_>>(),
            "sources": places.sources.iter().map(|s| serde_json::json!({"role": s.role, "path": s.path, "sha256": s.sha256})).collect::<Vec<_>>(),
        }));
    }
    println!("places of {} at H3 resolution {}:", policy.display(), pol.h3_resolution);
    for (r, n) in places.regions.iter().zip(&per_region) {
        println!(
            "  region {:<24} weight {:>10}  {n} cells",
            r.name,
            format!("{}.{:06}", r.weight / 1_000_000, r.weight % 1_000_000)
        );
    }
    if let (Some(c), Some(cc)) = (road_cells, road_centre) {
        println!("  roads: {c} road cells ({cc} on a road line, the rest its buffer), {km:.3} km of road");
    }
    for b in &places.bounties {
        println!("  bounty {}: {} cells", b.id, b.cells.len());
    }
    for s in &places.sources {
        println!("  source {} ({}): sha256 {}", s.path, s.role, s.sha256);
    }
    Ok(())
}
