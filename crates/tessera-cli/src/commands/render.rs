//! `tessera render`: an epoch's cells as a PNG map.

use crate::cli::{Color, RenderArgs};
use crate::output::print_json;
use anyhow::Result;
use tessera::render::{self, ColorBy, Options};

pub fn run(a: &RenderArgs, json: bool) -> Result<()> {
    let lake = super::open_lake(&a.at.lake)?;
    let e = a.at.epoch;
    let cells = tessera::geoparquet::epoch_cells(&lake, &e)?;
    let opts = Options {
        color_by: match a.color {
            Color::Freshness => ColorBy::Freshness,
            Color::Points => ColorBy::Points,
        },
        width: a.width,
        map_height: a.height,
        resolution: a.res,
    };
    let map = render::render(&e, &cells, &opts)?;
    tessera::lake::write_atomic(&a.output, &map.png)?;
    if json {
        let legend: Vec<_> = map
            .legend
            .iter()
            .map(|l| serde_json::json!({"label": l.label, "cells": l.count}))
            .collect();
        return print_json(
            &serde_json::json!({"output": a.output, "width": map.width, "height": map.height, "cells": map.cells, "drawn": map.drawn, "resolution": u8::from(map.drawn_resolution), "scale": map.scale, "legend": legend}),
        );
    }
    println!(
        "wrote {} ({}x{} px): {} cells of {e} drawn as {} at H3 res {}; scale bar {}",
        a.output.display(),
        map.width,
        map.height,
        map.cells,
        map.drawn,
        u8::from(map.drawn_resolution),
        map.scale
    );
    for l in &map.legend {
        println!("  {:<28} {:>8} cells", l.label, l.count);
    }
    Ok(())
}
