//! `cells::PointIndexer` against h3o: a walk of positions read from the bytes (a start, then
//! steps of any size down to 1e-12°), at the resolutions the bytes pick — every cell must be
//! exactly h3o's `LatLng::to_cell`, and two cells called adjacent by their hexagons must be at
//! grid distance 1.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let f = |c: &[u8]| f64::from_le_bytes(c.try_into().unwrap());
    let mut it = data.chunks_exact(17);
    let Some(first) = it.next() else { return };
    let (mut lat, mut lng) = ((f(&first[..8]) % 90.0).abs() * f(&first[..8]).signum(), f(&first[8..16]) % 180.0);
    if !lat.is_finite() || !lng.is_finite() {
        return;
    }
    let mut ix = tessera::cells::PointIndexer::default();
    let mut prev = [None; 16];
    for step in std::iter::once(first).chain(it) {
        let scale = 10f64.powi(-i32::from(step[16] % 13));
        let (dl, dg) = (f(&step[..8]), f(&step[8..16]));
        if !dl.is_finite() || !dg.is_finite() {
            continue;
        }
        lat = (lat + (dl % 1.0) * scale).clamp(-90.0, 90.0);
        lng = ((lng + (dg % 1.0) * scale) + 540.0).rem_euclid(360.0) - 180.0;
        let Ok(ll) = h3o::LatLng::new(lat, lng) else { continue };
        let r = h3o::Resolution::try_from(step[16] % 16).unwrap();
        let (c, hex) = ix.to_cell_hex(ll, r);
        assert_eq!(c, ll.to_cell(r), "{lat} {lng} {r}");
        let slot = &mut prev[usize::from(u8::from(r))];
        if let (Some((pc, Some(ph))), Some(h)) = (*slot, hex) {
            if tessera::cells::Hex::adjacent(ph, h) {
                assert_eq!(h3o::CellIndex::grid_distance(pc, c), Ok(1), "{pc} {c}");
            }
        }
        *slot = Some((c, hex));
    }
});
