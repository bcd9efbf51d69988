//! `tessera-gdal`: tessera's GDAL helper, the only binary that links GDAL. `tessera` starts it
//! (with `--serve-v1`) for the formats only GDAL reads or writes; the protocol is in
//! `tessera_cli::gdal_helper`. Requests are served one at a time, in order, until stdin closes.

use std::io::Write;
use tessera::gis::{Feature, FieldKind as K, Value as V};
use tessera_cli::gdal_helper::{path_from, read_frame, write_frame, Hello, Request, Response, PROTOCOL, SERVE_ARG};
use tessera_gis as g;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args != [SERVE_ARG] {
        eprintln!(
            "tessera-gdal: tessera's GDAL helper ({}); `tessera` starts it itself (with {SERVE_ARG}) for GeoPackage, \
             FlatGeobuf, GeoJSON, KML, Shapefile and GeoTIFF files and places read from OGR sources",
            g::gdal_version()
        );
        std::process::exit(2);
    }
    if let Err(e) = serve() {
        eprintln!("tessera-gdal: {}", tessera_cli::output::error_text(&e));
        std::process::exit(1);
    }
}

fn serve() -> anyhow::Result<()> {
    // GDAL's failures come back in the answers, not as GDAL's own `ERROR n:` lines on stderr.
    g::capture_gdal_messages();
    let mut rx = std::io::stdin().lock();
    let mut tx = std::io::BufWriter::new(std::io::stdout().lock());
    let hello = Hello {
        protocol: PROTOCOL,
        gdal: g::gdal_version(),
    };
    write_frame(&mut tx, &hello)?;
    while let Some(req) = read_frame::<Request<'static>>(&mut rx)? {
        let result = answer(req);
        let said = g::take_gdal_messages();
        let resp = match result {
            Ok(r) => {
                // A failure GDAL reported on the way to a success (e.g. a feature it skipped):
                // shown, not lost.
                for m in said {
                    eprintln!("tessera-gdal: {m}");
                }
                r
            }
            Err(e) => Response::Failed(with_gdal_messages(tessera_cli::output::error_text(&e), &said)),
        };
        write_frame(&mut tx, &resp)?;
    }
    tx.flush()?;
    Ok(())
}

/// `text`, followed by what GDAL said that `text` does not already hold.
fn with_gdal_messages(mut text: String, said: &[String]) -> String {
    for m in said {
        let msg = m.split_once(": ").map_or(m.as_str(), |(_, msg)| msg);
        if !text.contains(msg.trim()) {
            text.push_str(&format!("\n  ({m})"));
        }
    }
    text
}

fn answer(req: Request<'static>) -> anyhow::Result<Response> {
    match req {
        Request::WriteLayer {
            path,
            format,
            name,
            fields,
            features,
        } => {
            let layer = out_layer(name.into_owned(), fields, features.into_owned());
            g::write_layer(&path_from(&path), vector_format(format)?, &layer)?;
            Ok(Response::Written)
        }
        Request::WriteRaster { path, grid, cog } => {
            let grid = grid.into_owned();
            let out = g::Grid {
                west: grid.west,
                north: grid.north,
                pixel_deg: grid.pixel_deg,
                width: grid.width,
                height: grid.height,
                data: grid.data,
            };
            g::write_raster(&path_from(&path), &out, cog)?;
            Ok(Response::Written)
        }
        Request::Build => Ok(Response::Build(tessera::places::cache::executable_id()?)),
        Request::ReadLayer { path, layer } => {
            let feats = g::read_layer(&path_from(&path), layer.as_deref())?;
            Ok(Response::Shapes(
                feats
                    .into_iter()
                    .enumerate()
                    .map(|(i, f)| tessera::places::shapes::Shape {
                        fid: f.fid.unwrap_or(i as u64),
                        geometry: f.geometry,
                        attrs: f.attrs,
                    })
                    .collect(),
            ))
        }
    }
}

fn vector_format(f: tessera_cli::gis::ExportFormat) -> anyhow::Result<g::VectorFormat> {
    use tessera_cli::gis::ExportFormat as F;
    Ok(match f {
        F::Gpkg => g::VectorFormat::Gpkg,
        F::Fgb => g::VectorFormat::Fgb,
        F::Geojson => g::VectorFormat::GeoJson,
        F::Kml => g::VectorFormat::Kml,
        F::Shp => g::VectorFormat::Shp,
        F::Parquet => anyhow::bail!("GeoParquet is written by tessera itself (GDAL 3.6 has no Parquet driver)"),
    })
}

fn out_layer(name: String, fields: Vec<(String, K)>, features: Vec<Feature>) -> g::OutLayer {
    g::OutLayer {
        name,
        fields: fields
            .into_iter()
            .map(|(name, kind)| g::FieldDef {
                name,
                kind: match kind {
                    K::Text => g::FieldKind::Text,
                    K::Integer64 => g::FieldKind::Integer64,
                    K::Real => g::FieldKind::Real,
                    K::Boolean => g::FieldKind::Boolean,
                },
            })
            .collect(),
        features: features
            .into_iter()
            .map(|x| g::OutFeature {
                geometry: x.geometry,
                values: x
                    .values
                    .into_iter()
                    .map(|v| match v {
                        V::Null => g::Value::Null,
                        V::Text(s) => g::Value::Text(s),
                        V::Integer64(i) => g::Value::Integer64(i),
                        V::Real(r) => g::Value::Real(r),
                        V::Boolean(b) => g::Value::Boolean(b),
                    })
                    .collect(),
            })
            .collect(),
    }
}
