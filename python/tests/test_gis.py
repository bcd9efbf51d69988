"""tessera's GIS outputs read by independent tools: the road cells `tessera places` builds from an
OpenStreetMap extract against pyosmium + h3 (the H3 C library) applying the same rule; every
`tessera export` layer in every format read back through GDAL (pyogrio/geopandas); region cells
against their polygons with shapely."""

import json
import math
import os
import subprocess
from decimal import Decimal

import pytest

from conftest import REPO, tessera_bin

CORPUS = REPO.parent / "shared" / "corpus"

H3_RES = 12
EARTH_RADIUS_M = 6371008.8  # the mean Earth radius the rule names (geo's Haversine uses it too)
STEP_M = 1.0
# The highway classes the rule names (tessera's default `[roads] highways`).
HIGHWAYS = {
    "motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link",
    "secondary", "secondary_link", "tertiary", "tertiary_link",
    "unclassified", "residential", "living_street", "service",
}  # fmt: skip
# Both sides apply the same arithmetic to the same coordinates; only a midpoint within a rounding
# error of a cell edge (or of a whole number of metres) can land differently. Expect 0; allow
# 0.5 % of the cells for such float edge cases.
ROAD_TOLERANCE = 0.005
EPOCH = "2026-W47"
LAYERS = ["cells", "tracks", "regions"]
FORMATS = ["gpkg", "fgb", "geojson", "kml", "shp", "parquet"]


def corpus(rel):
    p = CORPUS / rel
    if not p.exists():
        if os.environ.get("TESSERA_REQUIRE_CORPUS") == "1":
            raise AssertionError(f"TESSERA_REQUIRE_CORPUS=1 but {p} is missing")
        pytest.skip(f"shared corpus {p} not present")
    return p


def cli_json(*args):
    """`tessera --json ARGS`, parsed; a failure shows the command and its stderr."""
    cmd = [tessera_bin(), "--json", *map(str, args)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)} exited {r.returncode}:\n{r.stderr}"
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def demo_lake(tmp_path_factory):
    lake = tmp_path_factory.mktemp("gis") / "lake"
    out = cli_json("demo", "--lake", lake)
    assert out["replay_identical"] is True
    assert (lake / "epochs" / EPOCH).is_dir(), f"the demo lake has no epoch {EPOCH}"
    return lake


# ---------------------------------------------------------------------------------------------
# 1. Road cells from OpenStreetMap


def haversine_m(lat1, lon1, lat2, lon2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def osm_road_cells(pbf):
    """The rule, applied with pyosmium and h3: road cells → mm of road in them, and the total mm."""
    import h3
    import osmium

    parts = []  # runs of consecutive located nodes of the road ways
    # Nodes must be read too for the location cache; a way node missing from the extract comes
    # back with an invalid location and splits the way there.
    for o in osmium.FileProcessor(str(pbf), osmium.osm.NODE | osmium.osm.WAY).with_locations():
        if not o.is_way() or o.tags.get("highway") not in HIGHWAYS:
            continue
        run = []
        for n in o.nodes:
            if n.location.valid():
                run.append((n.location.lon, n.location.lat))
            else:
                if len(run) >= 2:
                    parts.append(run)
                run = []
        if len(run) >= 2:
            parts.append(run)
    cells, total_mm = {}, 0
    for run in parts:
        for (lon1, lat1), (lon2, lat2) in zip(run, run[1:]):
            length = haversine_m(lat1, lon1, lat2, lon2)
            seg_mm = math.floor(length * 1000 + 0.5)
            total_mm += seg_mm
            n = max(1, math.ceil(length / STEP_M))
            given = 0
            for i in range(n):
                t = (i + 0.5) / n
                c = h3.str_to_int(h3.latlng_to_cell(lat1 + (lat2 - lat1) * t, lon1 + (lon2 - lon1) * t, H3_RES))
                upto = seg_mm * (i + 1) // n  # the segment's mm split so the steps sum to it
                cells[c] = cells.get(c, 0) + upto - given
                given = upto
    return cells, total_mm


def test_road_cells_match_an_independent_osmium_h3_reading(tmp_path):
    import h3
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    pbf = corpus("osm/Helsinki.osm.pbf").resolve()
    policy = tmp_path / "roads.toml"
    policy.write_text(f"[roads]\nsource = {json.dumps(str(pbf))}\nbuffer_cells = 0\n")
    out = tmp_path / "places.parquet"
    report = cli_json("places", "--policy", policy, "--output", out)
    t = pq.read_table(out)
    assert {"kind", "name", "cell", "cell_id", "weight", "road_mm"} <= set(t.column_names)
    roads = t.filter(pc.equal(t["kind"], "road"))
    ours = dict(zip(roads["cell"].to_pylist(), roads["road_mm"].to_pylist()))
    assert len(ours) == roads.num_rows == report["road_cells"], "a road cell is listed twice"
    assert roads.num_rows == t.num_rows, "only road cells were asked for"
    assert all(h3.int_to_str(c) == i for c, i in zip(roads["cell"].to_pylist(), roads["cell_id"].to_pylist()))
    assert all(h3.get_resolution(h3.int_to_str(c)) == H3_RES for c in ours)
    theirs, their_mm = osm_road_cells(pbf)
    print(f"road cells: tessera {len(ours)}, pyosmium+h3 {len(theirs)}")
    assert len(ours) > 1000 and len(theirs) > 1000
    only_ours, only_theirs = set(ours) - set(theirs), set(theirs) - set(ours)
    diff = len(only_ours) + len(only_theirs)
    print(f"symmetric difference {diff} ({len(only_ours)} only tessera's, {len(only_theirs)} only theirs)")
    assert diff <= ROAD_TOLERANCE * len(theirs), (
        f"{diff} road cells differ; only tessera: {[h3.int_to_str(c) for c in sorted(only_ours)[:10]]}, "
        f"only pyosmium+h3: {[h3.int_to_str(c) for c in sorted(only_theirs)[:10]]}"
    )
    # The road length: the sum of the segments' rounded mm, split over cells.
    our_mm = sum(ours.values())
    print(f"road length: tessera {our_mm} mm (road_km {report['road_km']}), pyosmium+h3 {their_mm} mm")
    assert report["road_km"] == f"{our_mm / 1e6:.3f}"
    assert abs(our_mm - their_mm) <= 1e-6 * their_mm, f"{our_mm} mm vs {their_mm} mm"
    same_mm = sum(ours[c] == theirs[c] for c in set(ours) & set(theirs))
    print(f"cells with the same road mm: {same_mm} of {len(set(ours) & set(theirs))}")
    assert len(set(ours) & set(theirs)) - same_mm <= ROAD_TOLERANCE * len(theirs)
    centre = sum(1 for mm in ours.values() if mm > 0)
    assert report["road_centre_cells"] == centre


# ---------------------------------------------------------------------------------------------
# 2. Exports in every format through GDAL


# Each layer's fields (≤ 10 characters, so that a Shapefile keeps them) and the attribute compared
# across formats, row by row.
FIELDS = {
    "cells": ["cell_id", "first_ep", "last_ep", "times_cov", "age_ep", "visits", "points", "points_txt"],
    "tracks": ["device", "source", "file", "status", "reason", "segment", "fixes", "first_time", "last_time"],
    "regions": ["region", "weight", "weight_txt", "cells", "fresh", "road_km", "fresh_km", "contribs", "points", "points_txt"],
}
KEY = {"cells": "points_txt", "tracks": "device", "regions": "points_txt"}
GEOM = {"cells": {"Polygon", "MultiPolygon"}, "tracks": {"LineString", "MultiLineString"}, "regions": {"Polygon", "MultiPolygon"}}
# The older GeoParquet cells schema (`export cells` to .parquet keeps it).
PARQUET_CELLS = ["cell", "cell_id", "epoch", "first_epoch", "last_epoch", "times_covered", "age_epochs", "visits", "points", "bbox", "geometry"]


def read(path):
    import geopandas

    if path.suffix == ".parquet":
        return geopandas.read_parquet(path)
    return geopandas.read_file(path, engine="pyogrio")


def plain(v):
    """A cell value comparable across readers: null (None, NaN, NA) as None, whole numbers as int."""
    import pandas as pd

    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v if isinstance(v, str) else int(v) if float(v).is_integer() else v


def canonical(g):
    """A geometry comparable across formats: a one-part multi geometry as its part (KML and
    Shapefile return one-part multis as single geometries), rings in shapely's normal order
    (Shapefile stores exterior rings clockwise), in 2D (LIBKML writes a 0 altitude)."""
    import shapely

    g = shapely.force_2d(g)
    if g.geom_type.startswith("Multi") and len(g.geoms) == 1:
        g = g.geoms[0]
    return shapely.normalize(g)


def test_exports_read_by_pyogrio_agree_across_formats(demo_lake, tmp_path):
    import shapely

    for layer in LAYERS:
        frames = {}
        for fmt in FORMATS:
            path = tmp_path / f"{layer}.{fmt}"
            out = cli_json("export", layer, "--lake", demo_lake, "--epoch", EPOCH, "--output", path)
            assert out["format"] == fmt and out["epoch"] == EPOCH
            gdf = read(path)
            where = f"{layer}.{fmt}"
            assert len(gdf) == out["features"] > 0, f"{where}: {len(gdf)} rows, the CLI says {out['features']}"
            assert gdf.geometry.is_valid.all(), f"{where}: invalid geometries {gdf[~gdf.geometry.is_valid].index[:5].tolist()}"
            assert not gdf.geometry.is_empty.any(), f"{where}: empty geometries"
            assert set(gdf.geometry.geom_type) <= GEOM[layer], f"{where}: {set(gdf.geometry.geom_type)}"
            # Every format here carries a CRS (GeoJSON and KML are WGS84 lon/lat by definition,
            # GeoParquet without `crs` is OGC:CRS84): EPSG:4326, axis order aside.
            assert gdf.crs is not None and gdf.crs.equals("EPSG:4326", ignore_axis_order=True), f"{where}: {gdf.crs}"
            b = gdf.total_bounds
            assert -180 <= b[0] <= b[2] <= 180 and -90 <= b[1] <= b[3] <= 90, f"{where}: bounds {b} are not lon/lat"
            if layer == "cells" and fmt == "parquet":
                import pyarrow.parquet as pq

                # geopandas leaves out the GeoParquet 1.1 covering `bbox` column: check the file's.
                assert pq.read_schema(path).names == PARQUET_CELLS, f"{where}: {pq.read_schema(path).names}"
                assert list(gdf.columns) == [c for c in PARQUET_CELLS if c != "bbox"], f"{where}: {list(gdf.columns)}"
            elif fmt == "kml":
                # The KML reader adds fields of its own (Name, description, and with LIBKML
                # timestamp, begin, end, altitudeMode, ...): every layer field is there, and
                # the values are compared below.
                missing = set(FIELDS[layer]) - set(gdf.columns)
                assert not missing, f"{where}: fields {missing} missing from {list(gdf.columns)}"
                ref_cols = [c for c in FIELDS[layer] if c in gdf.columns]
                assert ref_cols == FIELDS[layer]
            else:
                assert [c for c in gdf.columns if c != "geometry"] == FIELDS[layer], f"{where}: {list(gdf.columns)}"
            frames[fmt] = gdf
        ref = frames["gpkg"]
        key = KEY[layer]
        for fmt, gdf in frames.items():
            where = f"{layer}.{fmt}"
            if layer == "cells" and fmt == "parquet":
                continue  # compared with the gpkg below
            # Same features in the same order: the key attribute, and the geometries (KML keeps
            # coordinates as text, so compare within 1e-9 degrees, well under a millimetre).
            assert gdf[key].astype(str).tolist() == ref[key].astype(str).tolist(), f"{where}: {key} differs from the gpkg"
            same = [shapely.equals_exact(canonical(a), canonical(b), tolerance=1e-9) for a, b in zip(gdf.geometry, ref.geometry)]
            assert all(same), f"{where}: geometry of rows {[i for i, s in enumerate(same) if not s][:5]} differs from the gpkg"
        if layer in ("cells", "regions"):
            # The double `points` is the exact decimal text as a float.
            for fmt in ["gpkg", "fgb", "geojson", "shp"] + (["parquet"] if layer == "regions" else []):
                g = frames[fmt]
                assert [float(x) for x in g["points"]] == pytest.approx([float(Decimal(s)) for s in g["points_txt"]], rel=1e-12), f"{layer}.{fmt}"
        if layer == "cells":
            pq_cells = frames["parquet"]
            assert pq_cells["cell_id"].tolist() == ref["cell_id"].tolist(), "cells.parquet and cells.gpkg list different cells or order"
            assert all(isinstance(x, Decimal) for x in pq_cells["points"])
            assert pq_cells["points"].tolist() == [Decimal(s) for s in ref["points_txt"]], "cells.parquet points differ from cells.gpkg points_txt"
            assert (pq_cells["epoch"] == EPOCH).all()
            for a, b in [("first_epoch", "first_ep"), ("last_epoch", "last_ep"), ("times_covered", "times_cov"), ("age_epochs", "age_ep"), ("visits", "visits")]:
                assert [plain(x) for x in pq_cells[a]] == [plain(x) for x in ref[b]], f"cells.parquet {a} vs cells.gpkg {b}"
        if layer == "tracks":
            assert set(ref["status"]) <= {"accepted", "rejected"}
        print(f"{layer}: {len(ref)} features, the same in {', '.join(frames)}")


# ---------------------------------------------------------------------------------------------
# 3. Region cells against their polygons


def test_region_cells_are_inside_the_region_polygons(demo_lake):
    import h3
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    import shapely
    from shapely.geometry import shape

    t = pq.read_table(demo_lake / "epochs" / EPOCH / "places.parquet")
    regions = t.filter(pc.equal(t["kind"], "region"))
    names, cells = regions["name"].to_pylist(), regions["cell"].to_pylist()
    assert len(cells) > 0, "the demo epoch has no region cells"
    assert len(set(cells)) == len(cells), "a cell is in two regions"
    src = json.loads((demo_lake / "places" / "regions.geojson").read_text())
    polys = {}
    for f in src["features"]:
        name = f["properties"]["name"]
        polys[name] = shapely.union(polys[name], shape(f["geometry"])) if name in polys else shape(f["geometry"])
    assert set(names) == set(polys), f"region names {set(names)} vs polygons {set(polys)}"
    for p in polys.values():
        shapely.prepare(p)
    outside = []
    for name, c in zip(names, cells):
        lat, lng = h3.cell_to_latlng(h3.int_to_str(c))
        assert h3.get_resolution(h3.int_to_str(c)) == H3_RES
        if not polys[name].contains(shapely.Point(lng, lat)):
            outside.append((name, h3.int_to_str(c), lng, lat))
    assert not outside, f"{len(outside)} region cells have their centre outside their polygon, e.g. {outside[:5]}"
    # The other way round: H3's own centre-containment tiling (h3 C library) of each polygon gives
    # the same cells (none missing).
    for name, p in polys.items():
        mine = {c for n, c in zip(names, cells) if n == name}
        theirs = {h3.str_to_int(c) for c in h3.geo_to_cells(p, H3_RES)}
        print(f"region {name}: {len(mine)} cells, h3 tiles {len(theirs)}")
        assert mine == theirs, f"region {name}: {len(mine - theirs)} cells not h3's, {len(theirs - mine)} of h3's missing"
