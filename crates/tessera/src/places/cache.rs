//! A cache of built [`Places`] (`<lake>/cache/places/<key>.*`): building a policy's places
//! — tiling its regions and walking its roads in 1 m steps, each step an H3 index — costs seconds
//! to minutes, on every epoch run. The cells depend only on the software that built them, the
//! shape reader (GDAL's version), the policy's place sections and resolution, and the bytes of
//! the source files and of their companions (a Shapefile's `.dbf`, `.prj`…); the key is the
//! BLAKE3 hash of all of them, so a changed file, policy, build
//! of tessera or GDAL misses the cache and builds afresh, and a hit gives exactly the places a
//! build would (tested).
//!
//! A cache entry is three files: `<key>.parquet`, exactly the `places.parquet` an epoch writes
//! ([`crate::tables::places_parquet`]: a run with cached places writes these bytes instead of
//! encoding millions of rows again); `<key>.cells`, the same places' regions (with weights; a
//! region whose cells all went to another region has no cells) and cell lists as plain arrays
//! ([`super::cells_file`]: what a cached run scores with, read back from a mapping, where decoding
//! the Parquet file took ~0.35 s at 10^7 fixes' places); and `<key>.json`, written last: the key,
//! the SHA-256 of the Parquet file and the BLAKE3 of the cell file. An entry whose JSON does not
//! parse or names another key, or one of whose files is missing or altered (hashes), or whose
//! cell file does not decode is rebuilt and replaced, never trusted. The directory can be deleted
//! at any time.

use super::build::{build_with, source_records};
use super::shapes::{PlacesError, ShapeReader};
use super::{PlaceSource, Places};
use crate::policy::Policy;
use std::path::{Path, PathBuf};

/// Version of the cache key's contents and of the file layout (2: the Parquet file is the epoch
/// output's bytes, the key and regions in a JSON file beside it; 3: the regions and cells in a
/// cell file, the JSON holding the key and both files' hashes).
pub const FORMAT: u32 = 3;
/// Cache files kept per directory: the newest by modification time; older ones are removed
/// when a new one is written.
pub const KEEP: usize = 8;

/// `<key>.json`: the entry's key and the hashes of its two other files.
#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    format: u32,
    key: String,
    /// SHA-256 (hex) of `<key>.parquet`.
    places_sha256: String,
    /// BLAKE3 (hex) of `<key>.cells`.
    cells_blake3: String,
}

/// Where the places came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The policy names no places: nothing was read or cached.
    None,
    /// Read from this cache file.
    Cached(PathBuf),
    /// Built from the sources and stored in a cache file.
    Built {
        /// The cache file written.
        path: PathBuf,
        /// Whether a file of that name was there but did not decode or carried another key.
        replaced: bool,
    },
}

/// The cache key of a policy's places: BLAKE3 (hex) of [`FORMAT`], `build` (what identifies the
/// software, e.g. a hash of the running executable), the reader's [`ShapeReader::id`], the H3
/// resolution, the policy's `[[regions]]`, `[roads]` and `[[bounties]]` sections and the source
/// files' roles, paths and SHA-256, and `companions` (see [`companions`]).
///
/// ```
/// use tessera::places::cache::key;
/// let p = tessera::policy::Policy::default();
/// assert_eq!(key(&p, &[], &[], "b1", "native"), key(&p, &[], &[], "b1", "native"));
/// assert_ne!(key(&p, &[], &[], "b1", "native"), key(&p, &[], &[], "b2", "native"));
/// ```
pub fn key(
    policy: &Policy,
    sources: &[PlaceSource],
    companions: &[(String, String)],
    build: &str,
    reader: &str,
) -> String {
    let sources: Vec<[&str; 3]> = sources
        .iter()
        .map(|s| [s.role.as_str(), s.path.as_str(), s.sha256.as_str()])
        .collect();
    let doc = serde_json::json!({
        "format": FORMAT,
        "build": build,
        "reader": reader,
        "h3_resolution": policy.h3_resolution,
        "regions": policy.regions,
        "roads": policy.roads,
        "bounties": policy.bounties,
        "sources": sources,
        "companions": companions,
    });
    blake3::hash(doc.to_string().as_bytes()).to_hex().to_string()
}

/// The files beside each place source that share its name up to the first dot (`roads.shp` →
/// `roads.dbf`, `roads.shx`, `roads.prj`, `roads.cpg`): OGR reads a Shapefile's attributes and
/// CRS from them, so changing one changes the places while the source's own bytes stay the same.
/// (path relative to `base`, BLAKE3 hex), sorted by path; files that only share the stem by
/// chance just make the key stricter.
///
/// # Errors
/// [`PlacesError::Source`] naming a directory or file that cannot be read.
///
/// ```
/// # let d = tempfile::tempdir().unwrap();
/// std::fs::write(d.path().join("r.shp"), b"shp").unwrap();
/// std::fs::write(d.path().join("r.dbf"), b"dbf").unwrap();
/// let p = tessera::policy::Policy::from_toml_str("[[regions]]\nsource = \"r.shp\"\nname_field = \"n\"\n").unwrap();
/// let c = tessera::places::cache::companions(&p, d.path()).unwrap();
/// assert_eq!(c.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(), ["r.dbf"]);
/// ```
pub fn companions(policy: &Policy, base: &Path) -> Result<Vec<(String, String)>, PlacesError> {
    let sources = policy
        .regions
        .iter()
        .map(|r| &r.source)
        .chain(policy.roads.iter().map(|r| &r.source))
        .chain(policy.bounties.iter().map(|b| &b.source));
    let mut out = std::collections::BTreeMap::new();
    for src in sources {
        let rel = Path::new(src);
        let (Some(name), dir) = (
            rel.file_name().and_then(|n| n.to_str()),
            rel.parent().unwrap_or(Path::new("")),
        ) else {
            continue;
        };
        let prefix = format!("{}.", name.split('.').next().unwrap_or(name));
        let abs_dir = base.join(dir);
        let entries = std::fs::read_dir(&abs_dir).map_err(|e| PlacesError::source(&abs_dir, e.to_string()))?;
        for e in entries.flatten() {
            let other = e.file_name().to_string_lossy().into_owned();
            if other == name || !other.starts_with(&prefix) || !e.path().is_file() {
                continue;
            }
            let bytes = std::fs::read(e.path()).map_err(|x| PlacesError::source(&e.path(), x.to_string()))?;
            out.insert(
                dir.join(&other).to_string_lossy().into_owned(),
                blake3::hash(&bytes).to_hex().to_string(),
            );
        }
    }
    Ok(out.into_iter().collect())
}

/// The places of `policy` (sources relative to `base`), from the cache in `dir` when it holds
/// them under their [`key`], else built with [`super::build()`] and stored there (atomically:
/// temp file + rename, the JSON last; the oldest entries beyond [`KEEP`] are removed);
/// with the places, their `places.parquet` bytes ([`crate::tables::places_parquet`]; `None`
/// when the policy names no places).
///
/// # Errors
/// As [`super::build()`]; [`PlacesError::Source`] naming the cache file when it cannot be written.
///
/// ```
/// # let d = tempfile::tempdir().unwrap();
/// use tessera::places::{cache, shapes::Native};
/// let p = tessera::policy::Policy::default();
/// let (places, origin, bytes) = cache::load_or_build(&p, d.path(), &Native, &d.path().join("c"), "b").unwrap();
/// assert!(places.is_empty() && origin == cache::Origin::None && bytes.is_none());
/// ```
pub fn load_or_build(
    policy: &Policy,
    base: &Path,
    reader: &dyn ShapeReader,
    dir: &Path,
    build: &str,
) -> Result<(Places, Origin, Option<bytes::Bytes>), PlacesError> {
    if policy.regions.is_empty() && policy.roads.is_none() && policy.bounties.is_empty() {
        return Ok((Places::default(), Origin::None, None));
    }
    let sources = source_records(policy, base)?;
    // The reader (in the GDAL build, a helper process to start) only when it reads a source.
    let reader_id = if super::build::needs_reader(policy, base) {
        reader.id()
    } else {
        "native".to_owned()
    };
    let k = key(policy, &sources, &companions(policy, base)?, build, &reader_id);
    let path = dir.join(format!("{k}.parquet"));
    let (json, cells) = (path.with_extension("json"), path.with_extension("cells"));
    let ((entry, bytes), cell_bytes) = rayon::join(|| (std::fs::read(&json), map_file(&path)), || map_file(&cells));
    let replaced = match (entry, bytes, cell_bytes) {
        (Ok(entry), Ok(bytes), Ok(cell_bytes)) => match decode(policy, &entry, &bytes, &cell_bytes, &k) {
            Ok(mut places) => {
                places.sources = sources;
                return Ok((places, Origin::Cached(path), Some(bytes)));
            }
            Err(_) => true,
        },
        (Err(_), Err(_), Err(_)) => false,
        // Some files without the others: a write cut short, or files copied by hand.
        _ => true,
    };
    let places = build_with(policy, base, reader, sources)?;
    let files = encode(&places, &k).map_err(|m| PlacesError::source(&path, m))?;
    std::fs::create_dir_all(dir).map_err(|e| PlacesError::source(dir, e.to_string()))?;
    for (p, b) in [(&path, &files.parquet), (&cells, &files.cells), (&json, &files.json)] {
        crate::lake::write_atomic(p, b).map_err(|e| PlacesError::source(p, e.to_string()))?;
    }
    prune(dir, KEEP);
    Ok((places, Origin::Built { path, replaced }, Some(files.parquet.into())))
}

/// The bytes of a cache file, mapped rather than read (empty for an empty file). A cached run
/// of the 10^8-fix bench lake's places (a 0.80 GB cell file and a 0.15 GB Parquet file) spent
/// ~2 s copying them into fresh memory before its first source was read; mapped, the page
/// cache's pages are used in place. The Parquet bytes are handed on as they are (written into
/// the epoch as `places.parquet`); the mapping lives as long as they do.
fn map_file(path: &Path) -> std::io::Result<bytes::Bytes> {
    let file = std::fs::File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(bytes::Bytes::new());
    }
    // SAFETY: a private, read-only mapping of a file this cache writes only whole (temp file +
    // rename, `write_atomic`), never in place, so its bytes do not change while it is mapped;
    // the entry's hashes are checked on these bytes before anything is decoded or handed out.
    // (Another program writing into the file in place would break that, as it would for any
    // reader; truncating it would end the process with SIGBUS.)
    let map = unsafe { memmap2::MmapOptions::new().populate().map(&file)? };
    Ok(bytes::Bytes::from_owner(map))
}

/// A build id for [`load_or_build`] when tessera runs as its own executable (the CLI): BLAKE3
/// (hex) of the running executable's bytes, so a rebuilt or upgraded binary never reuses places
/// an older one built. (A library loaded into another program — the Python extension — must not
/// use this: the executable is the host's.)
///
/// # Errors
/// The I/O error when the executable cannot be located or read.
///
/// ```
/// let id = tessera::places::cache::executable_id().unwrap();
/// assert_eq!(id.len(), 64);
/// ```
pub fn executable_id() -> std::io::Result<String> {
    let exe = std::env::current_exe()?;
    // Mapped and hashed on all cores (the same hash as reading it): a release binary is 65–225
    // MB (`executable_id_in` remembers the hash of an unchanged file).
    let mut h = blake3::Hasher::new();
    h.update_mmap_rayon(exe)?;
    Ok(h.finalize().to_hex().to_string())
}

/// The file in a cache directory remembering [`executable_id`]s ([`executable_id_in`]).
pub const EXECUTABLE_IDS: &str = "executable-ids";

/// The identity of a file as the file system keeps it: device, inode, size, and modification
/// and status-change times to the nanosecond. Writing a file moves its change time, which no
/// user can set, so on a file system with sub-second times a rebuilt, upgraded or copied-over
/// executable never keeps the stamp of the one before. `None` where the change time has no
/// sub-second part (squashfs, erofs, iso9660, vfat: whole seconds, inodes by position in an
/// image, so two images built at one `SOURCE_DATE_EPOCH` could share a stamp) — and, once in a
/// billion, a real change time on an exact second: then the file is hashed.
#[cfg(unix)]
fn file_stamp(path: &Path) -> std::io::Result<Option<String>> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    if m.ctime_nsec() == 0 {
        return Ok(None);
    }
    Ok(Some(format!(
        "{}:{}:{}:{}.{:09}:{}.{:09}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    )))
}

/// [`executable_id`], remembered in `dir`'s [`EXECUTABLE_IDS`] file under the executable's file
/// identity (device, inode, size, modification and change times): hashing a release binary
/// (65–225 MB) took ~40–80 ms of CPU at the start of every epoch run with places; the same
/// unchanged file is hashed once. A stamp that does not match is ignored, and the file is
/// rewritten atomically (temp + rename) with the [`KEEP`] most recent executables — best effort:
/// when it cannot be written the id is still returned. Where the file has no stamp
/// (`file_stamp`: a file system without sub-second change times) or the system is not Unix, the
/// executable is hashed every time.
///
/// # Errors
/// The I/O error when the executable cannot be located or read.
///
/// ```
/// # let d = tempfile::tempdir().unwrap();
/// let id = tessera::places::cache::executable_id_in(d.path()).unwrap();
/// assert_eq!(id, tessera::places::cache::executable_id().unwrap());
/// assert_eq!(tessera::places::cache::executable_id_in(d.path()).unwrap(), id); // remembered
/// ```
pub fn executable_id_in(dir: &Path) -> std::io::Result<String> {
    #[cfg(unix)]
    {
        let exe = std::env::current_exe()?;
        let Some(stamp) = file_stamp(&exe)? else {
            return executable_id();
        };
        let memo = dir.join(EXECUTABLE_IDS);
        let lines: Vec<String> = std::fs::read_to_string(&memo)
            .unwrap_or_default()
            .lines()
            .filter(|l| matches!(l.split_once(' '), Some((_, id)) if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())))
            .map(str::to_string)
            .collect();
        if let Some(id) = lines.iter().find_map(|l| l.strip_prefix(&stamp)?.strip_prefix(' ')) {
            return Ok(id.to_string());
        }
        let id = executable_id()?;
        // Remembered only when the file did not change while it was hashed.
        if file_stamp(&exe)?.as_ref() == Some(&stamp) {
            let mut text = format!("{stamp} {id}\n");
            let ours = format!("{stamp} ");
            for l in lines.iter().filter(|l| !l.starts_with(&ours)).take(KEEP - 1) {
                text.push_str(l);
                text.push('\n');
            }
            let _ = std::fs::create_dir_all(dir)
                .and_then(|_| crate::lake::write_atomic(&memo, text.as_bytes()).map_err(std::io::Error::other));
        }
        Ok(id)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        executable_id()
    }
}

/// The bytes of a cache entry's three files.
struct Files {
    parquet: Vec<u8>,
    cells: Vec<u8>,
    json: Vec<u8>,
}

/// A cache entry: `places.parquet` bytes, the cell file and the JSON naming the key, the
/// Parquet bytes' SHA-256 and the cell file's BLAKE3.
fn encode(places: &Places, key: &str) -> Result<Files, String> {
    let bytes = crate::tables::places_parquet(places).map_err(|e| e.to_string())?;
    let cells = super::cells_file::encode(places);
    let entry = Entry {
        format: FORMAT,
        key: key.to_string(),
        places_sha256: crate::lake::sha256_hex(&bytes),
        cells_blake3: blake3_hex(&cells),
    };
    let json = serde_json::to_vec(&entry).map_err(|e| e.to_string())?;
    Ok(Files {
        parquet: bytes,
        cells,
        json,
    })
}

/// BLAKE3 (hex) of `bytes`, hashed on all cores.
fn blake3_hex(bytes: &[u8]) -> String {
    let mut h = blake3::Hasher::new();
    h.update_rayon(bytes);
    h.finalize().to_hex().to_string()
}

/// A cache entry → [`Places`] (without sources), refused unless its JSON names `key` and the
/// Parquet bytes and cell file are the ones it hashed.
fn decode(policy: &Policy, entry: &[u8], bytes: &[u8], cells: &[u8], key: &str) -> Result<Places, String> {
    let entry: Entry = serde_json::from_slice(entry).map_err(|e| e.to_string())?;
    if entry.format != FORMAT || entry.key != key {
        return Err("another key".into());
    }
    // Both hashed before the cells are decoded or the bytes handed out: only files this cache
    // wrote are used.
    let (sha, b3) = rayon::join(|| crate::lake::sha256_hex(bytes), || blake3_hex(cells));
    if sha != entry.places_sha256 {
        return Err("the Parquet file is not the one the entry hashed".into());
    }
    if b3 != entry.cells_blake3 {
        return Err("the cell file is not the one the entry hashed".into());
    }
    let ids: Vec<String> = policy.bounties.iter().map(|b| b.id.clone()).collect();
    let places = super::cells_file::decode(cells, &ids)?;
    if places.roads.is_some() != policy.roads.is_some() {
        return Err("the cell file and the policy disagree on a road network".into());
    }
    Ok(places)
}

/// Remove all but the `keep` newest entries of `dir` (by the Parquet file's modification time;
/// the JSON and cell files beside each removed one with it, and those whose Parquet file is
/// gone). Best effort: a cache.
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    let has = |p: &Path, ext: &str| p.extension().is_some_and(|x| x == ext);
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = paths
        .iter()
        .filter(|p| has(p, "parquet"))
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p.clone())))
        .collect();
    files.sort();
    let n = files.len().saturating_sub(keep);
    for (_, p) in files.into_iter().take(n) {
        let _ = std::fs::remove_file(&p);
    }
    for j in paths.iter().filter(|p| has(p, "json") || has(p, "cells")) {
        if !j.with_extension("parquet").exists() {
            let _ = std::fs::remove_file(j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::places::shapes::Native;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    fn square(name: &str, w: f64, x0: f64, y0: f64, d: f64) -> String {
        let (x1, y1) = (x0 + d, y0 + d);
        format!(
            r#"{{"type":"Feature","properties":{{"name":"{name}","w":{w}}},"geometry":{{"type":"Polygon","coordinates":[[[{x0},{y0}],[{x1},{y0}],[{x1},{y1}],[{x0},{y1}],[{x0},{y0}]]]}}}}"#
        )
    }

    /// Regions (one of them without cells: inside the first), roads and a bounty.
    fn fixture(dir: &Path) -> Policy {
        let fc = |fs: Vec<String>| format!(r#"{{"type":"FeatureCollection","features":[{}]}}"#, fs.join(","));
        write(dir, "a.geojson", &fc(vec![square("north", 2.0, 24.90, 60.16, 0.004)]));
        write(
            dir,
            "b.geojson",
            &fc(vec![
                square("inner", 3.0, 24.901, 60.161, 0.0005),
                square("south", 0.5, 24.90, 60.15, 0.003),
            ]),
        );
        write(
            dir,
            "roads.geojson",
            &fc(vec![r#"{"type":"Feature","properties":{"highway":"residential"},"geometry":{"type":"LineString","coordinates":[[24.90,60.155],[24.905,60.162]]}}"#.to_string()]),
        );
        write(
            dir,
            "bounty.geojson",
            &fc(vec![square("x", 1.0, 24.902, 60.162, 0.001)]),
        );
        Policy::from_toml_str(
            "h3_resolution = 11\n\
             [[regions]]\nsource = \"a.geojson\"\nname_field = \"name\"\nweight_field = \"w\"\n\
             [[regions]]\nsource = \"b.geojson\"\nname_field = \"name\"\nweight_field = \"w\"\n\
             [roads]\nsource = \"roads.geojson\"\n\
             [[bounties]]\nid = \"b1\"\nsource = \"bounty.geojson\"\npool = \"1000\"\n\
             first_epoch = \"2026-W46\"\nlast_epoch = \"2026-W47\"\n",
        )
        .unwrap()
    }

    #[test]
    fn cached_places_equal_built_places_including_regions_without_cells() {
        let d = tempfile::tempdir().unwrap();
        let p = fixture(d.path());
        let built = crate::places::build(&p, d.path(), &Native).unwrap();
        assert!(
            built.regions.iter().any(|r| r.name == "inner"),
            "fixture has the empty region"
        );
        assert!(!built.region_cells.is_empty() && built.roads.as_ref().is_some_and(|r| !r.is_empty()));
        let cache = d.path().join("cache");
        let (first, o1, b1) = load_or_build(&p, d.path(), &Native, &cache, "b").unwrap();
        assert!(matches!(o1, Origin::Built { replaced: false, .. }), "{o1:?}");
        let (second, o2, b2) = load_or_build(&p, d.path(), &Native, &cache, "b").unwrap();
        assert!(matches!(o2, Origin::Cached(_)), "{o2:?}");
        assert_eq!(first, built);
        assert_eq!(second, built);
        // The bytes handed out, built or cached, are the epoch output's encoding of the places.
        let encoded = crate::tables::places_parquet(&built).unwrap();
        assert_eq!(b1.unwrap(), encoded);
        // What a cached run scores with is what `epoch verify` reads back from the bytes it
        // publishes (with the region list of regions.parquet, which has the empty region too).
        let b2 = b2.unwrap();
        let mut published = crate::tables::places_from_parquet(&b2, true, &["b1".into()]).unwrap();
        published.add_regions(second.regions.clone()).unwrap();
        published.sources.clone_from(&second.sources);
        assert_eq!(published, second);
        assert_eq!(b2, encoded);
    }

    #[test]
    fn changed_source_bytes_policy_or_build_miss_the_cache() {
        let d = tempfile::tempdir().unwrap();
        let p = fixture(d.path());
        let cache = d.path().join("cache");
        load_or_build(&p, d.path(), &Native, &cache, "b").unwrap();
        // Another build of the software.
        assert!(matches!(
            load_or_build(&p, d.path(), &Native, &cache, "c").unwrap().1,
            Origin::Built { .. }
        ));
        // Another policy (the buffer around roads).
        let mut p2 = p.clone();
        p2.roads.as_mut().unwrap().buffer_cells = 0;
        let (pl2, o, _) = load_or_build(&p2, d.path(), &Native, &cache, "b").unwrap();
        assert!(matches!(o, Origin::Built { .. }));
        assert_eq!(pl2, crate::places::build(&p2, d.path(), &Native).unwrap());
        // The same path with other bytes: a region file moved east.
        let moved = square("north", 2.0, 24.91, 60.16, 0.004);
        write(
            d.path(),
            "a.geojson",
            &format!(r#"{{"type":"FeatureCollection","features":[{moved}]}}"#),
        );
        let (pl3, o, _) = load_or_build(&p, d.path(), &Native, &cache, "b").unwrap();
        assert!(matches!(o, Origin::Built { .. }), "{o:?}");
        assert_eq!(pl3, crate::places::build(&p, d.path(), &Native).unwrap());
    }

    /// Reads any file as GeoJSON and counts how often it is asked for its id.
    struct CountingReader {
        id: &'static str,
        asked: std::sync::atomic::AtomicUsize,
    }

    impl CountingReader {
        fn new(id: &'static str) -> CountingReader {
            CountingReader {
                id,
                asked: Default::default(),
            }
        }

        fn asked(&self) -> usize {
            self.asked.load(std::sync::atomic::Ordering::Relaxed)
        }
    }

    impl ShapeReader for CountingReader {
        fn read(&self, path: &Path, layer: Option<&str>) -> Result<Vec<crate::places::shapes::Shape>, PlacesError> {
            crate::places::shapes::read_geojson(path, layer)
        }

        fn id(&self) -> String {
            self.asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.id.to_owned()
        }
    }

    #[test]
    fn rule_the_reader_keys_the_cache_only_when_it_reads_a_source() {
        let d = tempfile::tempdir().unwrap();
        let cache = d.path().join("cache");
        // GeoJSON only: tessera reads every source itself; the reader is neither asked (in the
        // GDAL build that would start its helper process) nor part of the key.
        let p = fixture(d.path());
        let (r1, r2) = (CountingReader::new("r1"), CountingReader::new("r2"));
        let built = |o: Origin| matches!(o, Origin::Built { .. });
        assert!(built(load_or_build(&p, d.path(), &r1, &cache, "b").unwrap().1));
        assert!(!built(load_or_build(&p, d.path(), &r2, &cache, "b").unwrap().1));
        assert_eq!((r1.asked(), r2.asked()), (0, 0));
        // A region source in another format is read by the reader: another reader, another key.
        std::fs::copy(d.path().join("a.geojson"), d.path().join("a.fgb")).unwrap();
        let mut p2 = p.clone();
        p2.regions[0].source = "a.fgb".into();
        assert!(built(load_or_build(&p2, d.path(), &r1, &cache, "b").unwrap().1));
        assert!(!built(load_or_build(&p2, d.path(), &r1, &cache, "b").unwrap().1));
        assert!(built(load_or_build(&p2, d.path(), &r2, &cache, "b").unwrap().1));
        assert_eq!((r1.asked(), r2.asked()), (2, 1));
    }

    #[test]
    fn a_changed_companion_file_misses_the_cache() {
        // A Shapefile's .dbf (names, weights) or .prj (CRS) changes the places while the .shp
        // bytes stay the same: files sharing the source's stem are part of the key.
        let d = tempfile::tempdir().unwrap();
        let p = fixture(d.path());
        let cache = d.path().join("cache");
        write(d.path(), "a.prj", "GEOGCS[\"WGS 84\"]");
        assert!(matches!(
            load_or_build(&p, d.path(), &Native, &cache, "b").unwrap().1,
            Origin::Built { .. }
        ));
        assert!(matches!(
            load_or_build(&p, d.path(), &Native, &cache, "b").unwrap().1,
            Origin::Cached(_)
        ));
        write(d.path(), "a.prj", "PROJCS[\"ETRS89 / UTM 35N\"]");
        assert!(matches!(
            load_or_build(&p, d.path(), &Native, &cache, "b").unwrap().1,
            Origin::Built { .. }
        ));
        // A file that does not share the stem is not part of it.
        write(d.path(), "ab.prj", "x");
        assert!(matches!(
            load_or_build(&p, d.path(), &Native, &cache, "b").unwrap().1,
            Origin::Cached(_)
        ));
    }

    #[test]
    fn corrupt_or_foreign_cache_file_is_rebuilt_not_trusted() {
        let d = tempfile::tempdir().unwrap();
        let p = fixture(d.path());
        let cache = d.path().join("cache");
        let (built, o, _) = load_or_build(&p, d.path(), &Native, &cache, "b").unwrap();
        let Origin::Built { path, .. } = o.clone() else {
            panic!("{o:?}")
        };
        let json = path.with_extension("json");
        let rebuilt = || {
            let (again, o, bytes) = load_or_build(&p, d.path(), &Native, &cache, "b").unwrap();
            assert!(matches!(o, Origin::Built { replaced: true, .. }), "{o:?}");
            assert_eq!(again, built);
            assert_eq!(bytes.unwrap(), crate::tables::places_parquet(&built).unwrap());
        };
        // Truncated.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        rebuilt();
        // Altered but still a valid Parquet file (no region rows): its hash is not the entry's.
        std::fs::write(&path, encode(&Places::default(), "x").unwrap().parquet).unwrap();
        rebuilt();
        // A cell file cut short, or another (valid) one: its BLAKE3 is not the entry's.
        let cells = path.with_extension("cells");
        let good = std::fs::read(&cells).unwrap();
        std::fs::write(&cells, &good[..good.len() - 8]).unwrap();
        rebuilt();
        std::fs::write(&cells, encode(&Places::default(), "x").unwrap().cells).unwrap();
        rebuilt();
        // The cell file missing (a write cut short, or deleted by hand).
        std::fs::remove_file(&cells).unwrap();
        rebuilt();
        // Another key's (valid) entry under this key's name: e.g. copied by hand.
        std::fs::write(&json, encode(&Places::default(), "not-this-key").unwrap().json).unwrap();
        rebuilt();
        // The Parquet file without its entry (a write cut short).
        std::fs::remove_file(&json).unwrap();
        rebuilt();
        assert!(matches!(
            load_or_build(&p, d.path(), &Native, &cache, "b").unwrap().1,
            Origin::Cached(_)
        ));
    }

    #[test]
    fn a_mapped_cache_file_has_the_bytes_a_read_gives_and_outlives_its_replacement() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.cells");
        std::fs::write(&p, b"").unwrap();
        assert!(map_file(&p).unwrap().is_empty());
        let bytes: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
        crate::lake::write_atomic(&p, &bytes).unwrap();
        let mapped = map_file(&p).unwrap();
        assert_eq!(mapped, bytes);
        // The cache replaces files by rename (and prunes by unlink): a mapping keeps its bytes.
        crate::lake::write_atomic(&p, b"another entry").unwrap();
        std::fs::remove_file(&p).unwrap();
        assert_eq!(mapped, bytes);
        assert!(map_file(&p).is_err());
    }

    #[test]
    fn executable_id_is_the_blake3_of_the_executables_bytes() {
        let bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(executable_id().unwrap(), blake3::hash(&bytes).to_hex().to_string());
    }

    #[test]
    fn rule_a_remembered_executable_id_is_used_only_under_the_executables_own_stamp() {
        let d = tempfile::tempdir().unwrap();
        let id = executable_id().unwrap();
        assert_eq!(executable_id_in(d.path()).unwrap(), id);
        let memo = d.path().join(EXECUTABLE_IDS);
        let text = std::fs::read_to_string(&memo).unwrap();
        let stamp = file_stamp(&std::env::current_exe().unwrap()).unwrap().unwrap();
        assert_eq!(text, format!("{stamp} {id}\n"));
        // Under its own stamp a remembered id is what is returned (it is not hashed again) …
        let other = "ab".repeat(32);
        std::fs::write(&memo, format!("{stamp} {other}\n")).unwrap();
        assert_eq!(executable_id_in(d.path()).unwrap(), other);
        // … under any other stamp (another build, or this one rewritten) it is ignored, the
        // executable hashed, and the file keeps both, newest first.
        let older = format!("{}:{} {other}", stamp.rsplit_once(':').unwrap().0, "1.000000000");
        std::fs::write(&memo, format!("{older}\nnot a line\n")).unwrap();
        assert_eq!(executable_id_in(d.path()).unwrap(), id);
        assert_eq!(
            std::fs::read_to_string(&memo).unwrap(),
            format!("{stamp} {id}\n{older}\n")
        );
        // At most KEEP executables are remembered.
        let many: String = (0..20).map(|i| format!("0:{i}:0:0.0:0.0 {other}\n")).collect();
        std::fs::write(&memo, many).unwrap();
        assert_eq!(executable_id_in(d.path()).unwrap(), id);
        assert_eq!(std::fs::read_to_string(&memo).unwrap().lines().count(), KEEP);
        // An unwritable place still gives the id.
        assert_eq!(executable_id_in(&memo.join("not-a-dir")).unwrap(), id);
    }

    #[test]
    fn prune_keeps_the_newest_files() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..5 {
            write(d.path(), &format!("{i}.parquet"), "x");
            write(d.path(), &format!("{i}.json"), "{}");
            write(d.path(), &format!("{i}.cells"), "c");
            let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + i);
            std::fs::File::options()
                .write(true)
                .open(d.path().join(format!("{i}.parquet")))
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        write(d.path(), "notes.txt", "kept");
        write(d.path(), "orphan.json", "{}");
        write(d.path(), "orphan.cells", "c");
        prune(d.path(), 2);
        let mut left: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "3.cells",
                "3.json",
                "3.parquet",
                "4.cells",
                "4.json",
                "4.parquet",
                "notes.txt"
            ]
        );
    }
}
