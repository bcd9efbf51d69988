//! GeoTIFF and COG output checked with the real `gdalinfo -json`, values read back through GDAL.

mod common;

use common::{run, s};
use tessera_gis::{write_raster, Grid};

fn grid() -> Grid {
    Grid {
        west: 179.0,
        north: 10.5,
        pixel_deg: 0.25,
        width: 4,
        height: 3,
        data: vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, u32::MAX],
    }
}

fn check(cog: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("counts.tif");
    write_raster(&path, &grid(), cog).unwrap();
    let info: serde_json::Value = serde_json::from_str(&run("gdalinfo", &["-json", s(&path)])).unwrap();
    assert_eq!(info["size"], serde_json::json!([4, 3]));
    assert_eq!(
        info["geoTransform"],
        serde_json::json!([179.0, 0.25, 0.0, 10.5, 0.0, -0.25])
    );
    assert_eq!(info["driverShortName"], "GTiff");
    let band = &info["bands"][0];
    assert_eq!(band["type"], "UInt32");
    assert_eq!(band["noDataValue"], 0.0);
    let structure = &info["metadata"]["IMAGE_STRUCTURE"];
    assert_eq!(structure["COMPRESSION"], "DEFLATE", "{info}");
    assert_eq!(structure["LAYOUT"].as_str(), cog.then_some("COG"), "{info}");
    let wkt = info["coordinateSystem"]["wkt"].as_str().unwrap();
    assert!(wkt.contains("ID[\"EPSG\",4326]"), "{wkt}");
    let ds = gdal::Dataset::open(&path).unwrap();
    let values = ds
        .rasterband(1)
        .unwrap()
        .read_as::<u32>((0, 0), (4, 3), (4, 3), None)
        .unwrap();
    assert_eq!(values.data(), grid().data.as_slice());
    drop(ds);
    let first = std::fs::read(&path).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write_raster(&path, &grid(), cog).unwrap();
    assert!(
        std::fs::read(&path).unwrap() == first,
        "cog={cog}: not byte-reproducible"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary left");
}

#[test]
fn geotiff() {
    check(false);
}

#[test]
fn cog() {
    check(true);
}
