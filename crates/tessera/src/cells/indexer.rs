//! The H3 cell of each fix of a trace, exactly what h3o's `LatLng::to_cell` returns, computed
//! incrementally: consecutive fixes are metres apart, so most share the previous fix's cell or
//! its parent a few resolutions up.
//!
//! H3 (h3geo.org, "Indexing"; h3o 0.11 `FaceProjection`, `FaceIJK::to_cell`) indexes a point by
//! projecting it gnomonically onto the closest icosahedron face, quantizing the plane into the
//! hexagons of the resolution (`ijk` coordinates), then walking the aperture-7 parents up to a
//! base cell, one direction digit per resolution, rotated into the base cell's orientation. h3o
//! computes the projection with `acos`, `tan`, `atan2` and `sin_cos`, and every digit anew.
//!
//! [`PointIndexer`] computes the same projection with dot products (the gnomonic coordinates of
//! a unit vector `p` on face `f` are `s·(p·U_f)/(p·c_f)`, `s·(p·V_f)/(p·c_f)`, with `U_f`, `V_f`
//! the face's axes as tangent vectors — H3's azimuth formula expanded), and then:
//! - a point inside the previous fix's hexagon gets the previous cell;
//! - a point whose parent chain meets the previous fix's chain gets the previous cell with the
//!   digits below the meeting resolution replaced (rotated like the previous cell's digits);
//! - anything else — a new face, a pentagon base cell, resolution 0 — asks h3o.
//!
//! Consecutive fixes also share most of the projection's set-up: latitude and longitude sines
//! and cosines come from a nearby anchor angle by the angle-addition formula ([`crate::trig::NearSinCos`]),
//! and the face is the last point's while it is provably still the closest by a margin
//! ([`FaceAnchor`]) — so a fix costs no `sin_cos` and one face comparison instead of twenty.
//!
//! Only a point that is clearly inside its face and its hexagon takes a fast path: its distance
//! to the face boundary and to the hexagon's edges must exceed a margin well above the rounding
//! error of either computation (h3o's `acos` loses precision near a face centre, so the margin
//! grows there, and within ~64 m of a face centre every point goes to h3o). Tested equal to h3o
//! on random walks at every resolution, near pentagons, face edges and face centres, on the
//! corpus and on simulated fleets.

use crate::trig::NearSinCos;
use h3o::{CellIndex, LatLng, Resolution};
use std::sync::OnceLock;

/// Icosahedron face centres on the unit sphere (H3's `faceCenterPoint`, h3o `face::CENTER_POINT`).
#[rustfmt::skip]
const FACE_CENTER: [[f64; 3]; 20] = [
    [ 0.2199307791404606,  0.6583691780274996,  0.7198475378926182],
    [-0.2139234834501421,  0.1478171829550703,  0.9656017935214205],
    [ 0.1092625278784797, -0.481195157287321,   0.8697775121287253],
    [ 0.7428567301586791, -0.3593941678278028,  0.5648005936517033],
    [ 0.8112534709140969,  0.3448953237639384,  0.472138773641393],
    [-0.1055498149613921,  0.9794457296411413,  0.1718874610009365],
    [-0.8075407579970092,  0.1533552485898818,  0.5695261994882688],
    [-0.2846148069787907, -0.8644080972654206,  0.4144792552473539],
    [ 0.7405621473854482, -0.6673299564565524, -0.0789837646326737],
    [ 0.8512303986474293,  0.4722343788582681, -0.2289137388687808],
    [-0.7405621473854481,  0.6673299564565524,  0.0789837646326737],
    [-0.8512303986474292, -0.4722343788582682,  0.2289137388687808],
    [ 0.1055498149613919, -0.9794457296411413, -0.1718874610009365],
    [ 0.8075407579970092, -0.1533552485898819, -0.5695261994882688],
    [ 0.2846148069787908,  0.8644080972654204, -0.4144792552473539],
    [-0.7428567301586791,  0.3593941678278027, -0.5648005936517033],
    [-0.811253470914097,  -0.3448953237639382, -0.472138773641393],
    [-0.2199307791404607, -0.6583691780274996, -0.7198475378926182],
    [ 0.213923483450142,  -0.1478171829550704, -0.9656017935214205],
    [-0.1092625278784796,  0.481195157287321,  -0.8697775121287253],
];

/// Azimuth (radians) from each face centre to its Class II i-axis (H3's `faceAxesAzRadsCII[f][0]`).
#[rustfmt::skip]
const FACE_AXIS_AZ: [f64; 20] = [
    5.6199582685239395, 5.7603390817141875, 0.78021365439343, 0.4304693639799999,
    6.130269123335111, 2.692877706530643, 2.982963003477244, 3.532912002790141,
    3.494305004259568, 3.0032141694995382, 5.930472956509812, 0.13837848409025486,
    0.4487149470591504, 0.15862965011254937, 5.891865957979238, 2.711123289609793,
    3.294508837434268, 3.80481969224544, 3.6644388790551923, 2.361378999196363,
];

/// Rotation of the Class III grids against Class II (H3's `M_AP7_ROT_RADS`).
const AP7_ROT_RADS: f64 = 0.3334731722518321;
/// 1 / (res-0 unit length in the gnomonic plane) (H3's `1 / RES0_U_GNOMONIC`).
const INV_RES0_U_GNOMONIC: f64 = 2.618033988749896;
/// sin 60°.
const SIN60: f64 = 0.8660254037844386;

/// A point takes a fast path only if its closest face centre beats the second by this much in
/// `p·c` (the two computations of `p` and of the distances differ by ~1e-16).
const FACE_MARGIN: f64 = 1e-12;
/// Minimum distance, in hexagon units (centre spacing 1), from a hexagon edge.
const HEX_MARGIN: f64 = 1e-6;
/// h3o's angle from the face centre, `acos(1 − d²/2)`, is off by up to ~1e-16/sin r: the
/// margin adds `scale · ACOS_ERROR / sin r` hexagon units (100× that bound).
const ACOS_ERROR: f64 = 1e-14;
/// Points closer than this (sin r) to a face centre go to h3o (~64 m).
const MIN_SIN_R: f64 = 1e-5;

/// Per face and resolution class, the gnomonic axes `U`, `V` as tangent vectors; per
/// resolution, the scale `√7^res / RES0_U_GNOMONIC`.
struct Frames {
    axes: [[[[f64; 3]; 2]; 2]; 20],
    scale: [f64; 16],
}

fn frames() -> &'static Frames {
    static F: OnceLock<Frames> = OnceLock::new();
    F.get_or_init(|| {
        let mut axes = [[[[0.0; 3]; 2]; 2]; 20];
        for (f, c) in FACE_CENTER.iter().enumerate() {
            let (lat, lng) = (c[2].asin(), c[1].atan2(c[0]));
            let north = [-lat.sin() * lng.cos(), -lat.sin() * lng.sin(), lat.cos()];
            let east = [-lng.sin(), lng.cos(), 0.0];
            for (class, a) in [FACE_AXIS_AZ[f], FACE_AXIS_AZ[f] - AP7_ROT_RADS]
                .into_iter()
                .enumerate()
            {
                let (s, co) = a.sin_cos();
                // x = R·cos(A − az), y = R·sin(A − az), R·(cos az, sin az) ∝ (p·N, p·E).
                axes[f][class][0] = std::array::from_fn(|i| co * north[i] + s * east[i]);
                axes[f][class][1] = std::array::from_fn(|i| s * north[i] - co * east[i]);
            }
        }
        let scale = std::array::from_fn(|r| INV_RES0_U_GNOMONIC * 7f64.sqrt().powi(r as i32));
        Frames { axes, scale }
    })
}

fn dot(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// A position on the unit sphere with its face, when clearly inside one.
struct Point {
    v: [f64; 3],
    face: usize,
    /// `p·c` and sin of the angle to the face centre.
    cos_r: f64,
    sin_r: f64,
}

/// The last point whose face was found by comparing all 20 face centres: its unit vector,
/// face, and how much closer (in `p·c`) that centre was than the second closest. A point
/// within `δ` of it has every `p·c` within `δ` of its values, so while `margin − 2δ` stays
/// above [`FACE_MARGIN`] (plus rounding) its face is the same and clearly so.
#[derive(Clone, Copy)]
struct FaceAnchor {
    v: [f64; 3],
    face: usize,
    margin: f64,
}

/// Rounding allowance of the [`FaceAnchor`] shortcut (the dot products' and `δ`'s errors are
/// ~1e-16).
const FACE_SLACK: f64 = 1e-13;

impl FaceAnchor {
    const NONE: FaceAnchor = FaceAnchor {
        v: [0.0; 3],
        face: 0,
        margin: f64::NEG_INFINITY,
    };

    /// The face of unit vector `v` when clearly inside one (`None` when two face centres are
    /// within [`FACE_MARGIN`]).
    fn face_of(&mut self, v: &[f64; 3]) -> Option<usize> {
        let d = [v[0] - self.v[0], v[1] - self.v[1], v[2] - self.v[2]];
        if self.margin - 2.0 * dot(&d, &d).sqrt() > FACE_MARGIN + FACE_SLACK {
            return Some(self.face);
        }
        let (mut face, mut best, mut second) = (0, f64::MIN, f64::MIN);
        for (f, c) in FACE_CENTER.iter().enumerate() {
            let d = dot(v, c);
            if d > best {
                (face, best, second) = (f, d, best);
            } else if d > second {
                second = d;
            }
        }
        (best - second > FACE_MARGIN).then(|| {
            *self = FaceAnchor {
                v: *v,
                face,
                margin: best - second,
            };
            face
        })
    }
}

/// H3 `ijk` coordinates, normalized (non-negative, one of them 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Ijk {
    i: i32,
    j: i32,
    k: i32,
}

impl Ijk {
    fn new(i: i32, j: i32, k: i32) -> Ijk {
        let m = i.min(j).min(k);
        Ijk {
            i: i - m,
            j: j - m,
            k: k - m,
        }
    }

    /// The aperture-7 parent (h3o `up_aperture7`; Class III resolutions rotate CCW).
    fn parent(self, class3: bool) -> Ijk {
        let (i, j) = (self.i - self.k, self.j - self.k);
        let (a, b) = if class3 {
            (3 * i - j, i + 2 * j)
        } else {
            (2 * i + j, 3 * j - i)
        };
        Ijk::new(round_seventh(a), round_seventh(b), 0)
    }

    /// The centre child of a parent (h3o `down_aperture7`).
    fn center_child(self, class3: bool) -> Ijk {
        let [iv, jv, kv] = if class3 {
            [[3, 0, 1], [1, 3, 0], [0, 1, 3]]
        } else {
            [[3, 1, 0], [0, 3, 1], [1, 0, 3]]
        };
        let c = |n: usize| iv[n] * self.i + jv[n] * self.j + kv[n] * self.k;
        Ijk::new(c(0), c(1), c(2))
    }

    /// The direction digit of this child of `parent` (H3 `UNIT_VECS`: digit = 4i + 2j + k).
    fn digit(self, parent: Ijk, class3: bool) -> u8 {
        let c = parent.center_child(class3);
        let d = Ijk::new(self.i - c.i, self.j - c.j, self.k - c.k);
        (d.i * 4 + d.j * 2 + d.k) as u8
    }
}

/// Where a point's cell lies in the hexagon grid of its icosahedron face (face, `ijk` at the
/// cell's resolution), when [`PointIndexer`] computed it (`None` from the `*_hex` methods when
/// h3o answered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hex {
    face: u8,
    res: u8,
    ijk: Ijk,
}

impl Hex {
    /// Whether the two cells are distinct hexagons of one resolution sharing an edge in one
    /// face's grid: H3 neighbours, grid distance 1 (tested against h3o's `grid_distance`);
    /// `false` for cells of two resolutions.
    ///
    /// ```
    /// use h3o::{LatLng, Resolution};
    /// let mut ix = tessera::cells::PointIndexer::default();
    /// let (a, ha) = ix.to_cell_hex(LatLng::new(52.5, 13.4).unwrap(), Resolution::Twelve);
    /// let (b, hb) = ix.to_cell_hex(LatLng::new(52.5001, 13.4).unwrap(), Resolution::Twelve);
    /// assert_eq!(ha.unwrap().adjacent(hb.unwrap()), a.grid_distance(b) == Ok(1));
    /// ```
    pub fn adjacent(self, other: Hex) -> bool {
        let (a, b) = (self.ijk, other.ijk);
        let d = Ijk::new(a.i - b.i, a.j - b.j, a.k - b.k);
        self.face == other.face && self.res == other.res && d.i.max(d.j).max(d.k) == 1
    }
}

/// `a / 7` rounded to the nearest integer, in integers: what h3o's `up_aperture7` computes as
/// `(f64::from(a) / 7.0).round()` (and this indexer did as `f64::from(a) * (1.0 / 7.0)`). The
/// same for every `i32`: `a / 7` is never a tie (7 is odd), at least 1/14 from one, and either
/// float quotient is within ~10⁻⁷ of it (tested over every `a` with `|a| ≤ 2^24` and at the ends
/// of the range).
#[inline]
fn round_seventh(a: i32) -> i32 {
    // ⌊a/7 + 1/2⌋ = ⌊(2a + 7) / 14⌋, shifted by 2^29 · 14 to divide a non-negative number
    // (2a + 7 > −2^32): an unsigned division by a constant, one multiplication.
    const SHIFT: u64 = 14 << 29;
    (((2 * i64::from(a) + 7) as u64).wrapping_add(SHIFT) / 14) as i32 - (1 << 29)
}

/// One 60° counter-clockwise rotation of a direction digit (H3 `_rotate60ccw`):
/// K→IK→I→IJ→J→JK→K.
const ROTATE60_CCW: [u8; 8] = [0, 5, 3, 1, 6, 4, 2, 7];

fn rotate(mut d: u8, n: u8) -> u8 {
    for _ in 0..n {
        d = ROTATE60_CCW[usize::from(d)];
    }
    d
}

/// Bit offset of the digit of resolution `r` in an H3 index.
fn digit_shift(r: usize) -> u32 {
    3 * (15 - r as u32)
}

/// The previous fix at one resolution: its face, hexagon centre in the face plane, `ijk` at
/// every resolution up to its own, its cell, and how its digits are rotated (`None`: unknown,
/// or a pentagon base cell — no digit replacement then).
#[derive(Clone)]
struct Last {
    face: usize,
    center: (f64, f64),
    ijk: [Ijk; 16],
    cell: CellIndex,
    rotation: Option<u8>,
}

/// H3 point indexing for sequences of nearby points (the fixes of a trace): the same cells as
/// h3o's [`LatLng::to_cell`], several times faster on consecutive fixes (see the module docs).
/// Keeps the last point's cell per resolution; the result never depends on that state.
///
/// ```
/// use h3o::{LatLng, Resolution};
/// let mut ix = tessera::cells::PointIndexer::default();
/// for i in 0..100 {
///     let ll = LatLng::new(52.5 + i as f64 * 1e-4, 13.4).unwrap();
///     assert_eq!(ix.to_cell(ll, Resolution::Twelve), ll.to_cell(Resolution::Twelve));
/// }
/// ```
pub struct PointIndexer {
    frames: &'static Frames,
    last: [Option<Box<Last>>; 16],
    /// Points answered by h3o (tests check the fast paths are taken).
    fallbacks: u64,
    lat: NearSinCos,
    lng: NearSinCos,
    face: FaceAnchor,
}

impl Default for PointIndexer {
    fn default() -> Self {
        PointIndexer {
            frames: frames(),
            last: Default::default(),
            fallbacks: 0,
            lat: NearSinCos::NONE,
            lng: NearSinCos::NONE,
            face: FaceAnchor::NONE,
        }
    }
}

impl PointIndexer {
    /// The cell of `ll` at `res`: exactly `ll.to_cell(res)`.
    ///
    /// ```
    /// use h3o::{LatLng, Resolution};
    /// let ll = LatLng::new(-33.9, 151.2).unwrap();
    /// let c = tessera::cells::PointIndexer::default().to_cell(ll, Resolution::Nine);
    /// assert_eq!(c, ll.to_cell(Resolution::Nine));
    /// ```
    pub fn to_cell(&mut self, ll: LatLng, res: Resolution) -> CellIndex {
        self.to_cell_hex(ll, res).0
    }

    /// [`PointIndexer::to_cell`] with the cell's [`Hex`] when known (for [`Hex::adjacent`]).
    ///
    /// ```
    /// // see `Hex::adjacent`
    /// ```
    pub fn to_cell_hex(&mut self, ll: LatLng, res: Resolution) -> (CellIndex, Option<Hex>) {
        match self.point(ll) {
            Some(p) => self.cell_at(&p, ll, res),
            None => (self.h3o(ll, res), None),
        }
    }

    /// `ll` on the unit sphere with its face, when clearly inside one and not at its centre.
    fn point(&mut self, ll: LatLng) -> Option<Point> {
        let (sl, cl) = self.lat.sin_cos(ll.lat_radians());
        let (so, co) = self.lng.sin_cos(ll.lng_radians());
        let v = [cl * co, cl * so, sl];
        let face = self.face.face_of(&v)?;
        let cos_r = dot(&v, &FACE_CENTER[face]);
        let sin_r = (1.0 - cos_r * cos_r).max(0.0).sqrt();
        (sin_r > MIN_SIN_R).then_some(Point { v, face, cos_r, sin_r })
    }

    fn h3o(&mut self, ll: LatLng, res: Resolution) -> CellIndex {
        self.fallbacks += 1;
        ll.to_cell(res)
    }

    /// The cells of `ll` at several resolutions (one projection onto the sphere for all):
    /// exactly `res.map(|r| ll.to_cell(r))`.
    ///
    /// ```
    /// use h3o::{LatLng, Resolution};
    /// let ll = LatLng::new(48.86, 2.35).unwrap();
    /// let [a, b] = tessera::cells::PointIndexer::default().to_cells(ll, [Resolution::Twelve, Resolution::Eight]);
    /// assert_eq!((a, b), (ll.to_cell(Resolution::Twelve), ll.to_cell(Resolution::Eight)));
    /// ```
    pub fn to_cells<const N: usize>(&mut self, ll: LatLng, res: [Resolution; N]) -> [CellIndex; N] {
        self.to_cells_hex(ll, res).map(|(c, _)| c)
    }

    /// [`PointIndexer::to_cells`] with each cell's [`Hex`] when known.
    ///
    /// ```
    /// use h3o::{LatLng, Resolution};
    /// let ll = LatLng::new(48.86, 2.35).unwrap();
    /// let [(a, _), (b, _)] = tessera::cells::PointIndexer::default().to_cells_hex(ll, [Resolution::Twelve, Resolution::Eight]);
    /// assert_eq!((a, b), (ll.to_cell(Resolution::Twelve), ll.to_cell(Resolution::Eight)));
    /// ```
    pub fn to_cells_hex<const N: usize>(&mut self, ll: LatLng, res: [Resolution; N]) -> [(CellIndex, Option<Hex>); N] {
        let p = self.point(ll);
        res.map(|r| match &p {
            Some(p) => self.cell_at(p, ll, r),
            None => (self.h3o(ll, r), None),
        })
    }

    fn cell_at(&mut self, p: &Point, ll: LatLng, res: Resolution) -> (CellIndex, Option<Hex>) {
        let r = usize::from(u8::from(res));
        if r == 0 {
            return (self.h3o(ll, res), None);
        }
        let [u, v] = &self.frames.axes[p.face][r & 1];
        let s = self.frames.scale[r] / p.cos_r;
        let (x, y) = (s * dot(&p.v, u), s * dot(&p.v, v));
        let margin = HEX_MARGIN + self.frames.scale[r] * ACOS_ERROR / p.sin_r;
        let hex = |ijk: Ijk| {
            Some(Hex {
                face: p.face as u8,
                res: r as u8,
                ijk,
            })
        };
        if let Some(last) = &self.last[r]
            && last.face == p.face
            && inside(x - last.center.0, y - last.center.1, margin)
        {
            return (last.cell, hex(last.ijk[r]));
        }
        let Some((center, ijk)) = hexagon(x, y, margin) else {
            self.last[r] = None;
            return (self.h3o(ll, res), None);
        };
        let mut chain = [Ijk::default(); 16];
        chain[r] = ijk;
        if let Some(cell) = self.extend(p.face, center, &mut chain, r) {
            return (cell, hex(ijk));
        }
        let cell = self.h3o(ll, res);
        let rotation = digit_rotation(&chain, r, cell);
        self.last[r] = Some(Box::new(Last {
            face: p.face,
            center,
            ijk: chain,
            cell,
            rotation,
        }));
        (cell, hex(ijk))
    }

    /// Walk the parents of `chain[r]` up until they meet the previous fix's chain on the same
    /// face; then the cell is the previous one with the digits from the meeting resolution down
    /// replaced. `None` when they do not meet (or the cell is not valid); `chain` is then filled
    /// down to resolution 0 (for the caller's fallback); after a `Some` only `chain[level..=r]` is.
    fn extend(&mut self, face: usize, center: (f64, f64), chain: &mut [Ijk; 16], r: usize) -> Option<CellIndex> {
        let last = self.last[r]
            .as_deref()
            .filter(|l| l.face == face && l.rotation.is_some());
        let mut digits = [0u8; 16];
        let mut meet = None;
        for level in (1..=r).rev() {
            let class3 = level % 2 == 1;
            let parent = chain[level].parent(class3);
            digits[level] = chain[level].digit(parent, class3);
            chain[level - 1] = parent;
            if last.is_some_and(|l| l.ijk[level - 1] == parent) {
                meet = Some(level);
                break;
            }
        }
        let (level, last) = (meet?, self.last[r].as_deref_mut()?);
        let Some(n) = last.rotation else {
            chain[..level].copy_from_slice(&last.ijk[..level]);
            return None;
        };
        let mut bits = u64::from(last.cell);
        for (m, d) in digits.iter().enumerate().take(r + 1).skip(level) {
            let shift = digit_shift(m);
            bits = (bits & !(7u64 << shift)) | (u64::from(rotate(*d, n)) << shift);
        }
        let Ok(cell) = CellIndex::try_from(bits) else {
            // Below the meeting point the chains are the same: the caller's fallback needs
            // them (only here: the cell found keeps `last`'s levels below `level` as they are).
            chain[..level].copy_from_slice(&last.ijk[..level]);
            return None;
        };
        last.ijk[level..=r].copy_from_slice(&chain[level..=r]);
        last.center = center;
        last.cell = cell;
        Some(cell)
    }
}

/// How h3o rotated the digits of `cell` (whose unrotated `ijk` chain is `chain[0..=r]`) into
/// its base cell's orientation: the `n` with `cell`'s digit = `rotate(raw, n)` at every
/// resolution. `None` for a pentagon base cell (its rotations are not uniform) or when no
/// digit tells (all zero) or they disagree.
fn digit_rotation(chain: &[Ijk; 16], r: usize, cell: CellIndex) -> Option<u8> {
    if cell.base_cell().is_pentagon() {
        return None;
    }
    let bits = u64::from(cell);
    let raw: Vec<(u8, u8)> = (1..=r)
        .map(|m| {
            let class3 = m % 2 == 1;
            (
                chain[m].digit(chain[m - 1], class3),
                ((bits >> digit_shift(m)) & 7) as u8,
            )
        })
        .collect();
    let &(d, f) = raw.iter().find(|(d, _)| *d != 0)?;
    let n = (0..6).find(|n| rotate(d, *n) == f)?;
    raw.iter().all(|(d, f)| rotate(*d, n) == *f).then_some(n)
}

/// Whether `(dx, dy)` (from a hexagon centre) is inside the hexagon by more than `margin`:
/// the three axes of the H3 plane (`x = i − j/2`, `y = j·sin 60°`) at 0°, 60°, 120°.
fn inside(dx: f64, dy: f64, margin: f64) -> bool {
    let lim = 0.5 - margin;
    dx.abs() < lim && (0.5 * dx + SIN60 * dy).abs() < lim && (-0.5 * dx + SIN60 * dy).abs() < lim
}

/// The hexagon containing `(x, y)` — its centre and `ijk` — when the point is inside it by more
/// than `margin` (else `None`: too close to an edge to be sure what h3o's rounding gives).
fn hexagon(x: f64, y: f64, margin: f64) -> Option<((f64, f64), Ijk)> {
    // The nearest centre is in one of the two rows of centres around y.
    let j0 = (y / SIN60).floor();
    let candidate = |j: f64| {
        let i = (x + 0.5 * j).round();
        (i, j, (x - (i - 0.5 * j)).powi(2) + (y - j * SIN60).powi(2))
    };
    let (a, b) = (candidate(j0), candidate(j0 + 1.0));
    let (i, j, _) = if b.2 < a.2 { b } else { a };
    let c = (i - 0.5 * j, j * SIN60);
    if !inside(x - c.0, y - c.1, margin) || i.abs() > 1e9 || j.abs() > 1e9 {
        return None;
    }
    Some((c, Ijk::new(i as i32, j as i32, 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_the_parent_rounds_a_seventh_as_h3o_does() {
        let float = |a: i32| (f64::from(a) / 7.0).round() as i32;
        let mine = |a: i32| (f64::from(a) * (1.0 / 7.0)).round() as i32;
        for a in (-(1 << 24)..=(1 << 24)).chain([i32::MIN, i32::MIN + 1, i32::MAX - 1, i32::MAX]) {
            assert_eq!(round_seventh(a), float(a), "{a}");
            assert_eq!(round_seventh(a), mine(a), "{a}");
        }
        let mut rng = Rng(0x7777);
        for _ in 0..1_000_000 {
            let a = (rng.unit() * 4_294_967_295.0 - 2_147_483_648.0) as i32;
            assert_eq!(round_seventh(a), float(a), "{a}");
        }
    }

    /// xorshift: deterministic test points without a dependency.
    struct Rng(u64);
    impl Rng {
        fn unit(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn lat_lng(v: [f64; 3]) -> (f64, f64) {
        let n = dot(&v, &v).sqrt();
        ((v[2] / n).asin().to_degrees(), v[1].atan2(v[0]).to_degrees())
    }

    /// Walk starts: uniform on the sphere, next to the 12 pentagons, on face edges, near face
    /// centres (where h3o's own projection is least precise).
    fn start(kind: u64, n: u64, rng: &mut Rng) -> (f64, f64) {
        match kind {
            0 => ((2.0 * rng.unit() - 1.0).asin().to_degrees(), 360.0 * rng.unit() - 180.0),
            1 => {
                let pentagons: Vec<CellIndex> = CellIndex::base_cells().filter(|c| c.is_pentagon()).collect();
                let ll = LatLng::from(pentagons[n as usize % 12]);
                (ll.lat() + (rng.unit() - 0.5) * 0.5, ll.lng() + (rng.unit() - 0.5) * 0.5)
            }
            2 => {
                let a = FACE_CENTER[n as usize % 20];
                let b = FACE_CENTER
                    .iter()
                    .filter(|c| dot(&a, c) < 0.999)
                    .max_by(|x, y| dot(&a, x).total_cmp(&dot(&a, y)))
                    .unwrap();
                let t = rng.unit();
                lat_lng(std::array::from_fn(|i| a[i] * t + b[i] * (1.0 - t)))
            }
            _ => {
                let (lat, lng) = lat_lng(FACE_CENTER[n as usize % 20]);
                let d = 10f64.powf(-6.0 + 5.0 * rng.unit());
                (lat + d * (rng.unit() - 0.5), lng + d * (rng.unit() - 0.5))
            }
        }
    }

    #[test]
    fn rule_point_indexer_equals_h3o_on_random_walks_at_every_resolution() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut ix: Vec<PointIndexer> = (0..16).map(|_| PointIndexer::default()).collect();
        let mut checked = 0;
        for walk in 0..4_000u64 {
            let (mut lat, mut lng) = start(walk % 4, walk / 4, &mut rng);
            let step = 10f64.powf(-7.0 + 5.0 * rng.unit()); // 1 cm .. 1 km
            let heading = rng.unit() * std::f64::consts::TAU;
            for _ in 0..30 {
                let turn = heading + (rng.unit() - 0.5) * 0.5;
                lat = (lat + step * turn.cos()).clamp(-89.999, 89.999);
                lng += step * turn.sin();
                lng = if lng > 180.0 {
                    lng - 360.0
                } else if lng < -180.0 {
                    lng + 360.0
                } else {
                    lng
                };
                let ll = LatLng::new(lat, lng).unwrap();
                for (r, ix) in Resolution::range(Resolution::Zero, Resolution::Fifteen).zip(&mut ix) {
                    assert_eq!(ix.to_cell(ll, r), ll.to_cell(r), "{lat} {lng} {r}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 4_000 * 30 * 16);
    }

    #[test]
    fn rule_face_anchor_gives_the_face_of_all_twenty_comparisons() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let (mut shortcuts, mut n) = (0, 0);
        for walk in 0..3_000u64 {
            let (mut lat, mut lng) = start(walk % 4, walk, &mut rng);
            let mut anchored = FaceAnchor::NONE;
            let step = 10f64.powi(-((walk % 5) as i32) - 1); // degrees: 11 km .. 1 m
            for _ in 0..200 {
                let v = {
                    let (sl, cl) = lat.to_radians().sin_cos();
                    let (so, co) = lng.to_radians().sin_cos();
                    [cl * co, cl * so, sl]
                };
                let before = anchored.margin;
                let got = anchored.face_of(&v);
                shortcuts += usize::from(anchored.margin == before && got.is_some());
                n += 1;
                let mut fresh = FaceAnchor::NONE;
                assert_eq!(got, fresh.face_of(&v), "({lat}, {lng})");
                lat = (lat + step * (2.0 * rng.unit() - 1.0)).clamp(-89.999, 89.999);
                lng = (lng + step * (2.0 * rng.unit() - 1.0) + 540.0).rem_euclid(360.0) - 180.0;
            }
        }
        assert!(shortcuts * 10 > n * 8, "{shortcuts} of {n} points took the shortcut");
    }

    #[test]
    fn rule_adjacent_hexes_are_at_grid_distance_one() {
        // Consecutive points of random walks (every start kind, every resolution): two cells
        // called adjacent by their hexagons are at h3o grid distance 1 — also next to
        // pentagons and across base cells — and the shortcut is taken often.
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let (mut adjacent, mut pairs) = (0, 0);
        for walk in 0..3_000u64 {
            let (mut lat, mut lng) = start(walk % 4, walk / 4, &mut rng);
            let res = Resolution::try_from((walk % 15 + 1) as u8).unwrap();
            let step = res.edge_length_m() / 111_000.0 * (0.2 + 1.5 * rng.unit());
            let heading = rng.unit() * std::f64::consts::TAU;
            let mut ix = PointIndexer::default();
            let mut prev: Option<(CellIndex, Option<Hex>)> = None;
            for _ in 0..40 {
                let turn = heading + (rng.unit() - 0.5);
                lat = (lat + step * turn.cos()).clamp(-89.999, 89.999);
                lng = (lng + step * turn.sin() + 540.0).rem_euclid(360.0) - 180.0;
                let ll = LatLng::new(lat, lng).unwrap();
                let (c, h) = ix.to_cell_hex(ll, res);
                if let Some((pc, Some(ph))) = prev
                    && let Some(h) = h
                {
                    pairs += 1;
                    if ph.adjacent(h) {
                        adjacent += 1;
                        assert_eq!(pc.grid_distance(c), Ok(1), "{pc} {c} {lat} {lng} {res}");
                    } else if pc.grid_distance(c) == Ok(1) {
                        // Not claimed adjacent: only when the hexagons are on two faces.
                        assert_ne!(ph.face, h.face, "{pc} {c}");
                    }
                }
                prev = Some((c, h));
            }
        }
        assert!(adjacent > pairs / 4, "{adjacent} of {pairs}");
    }

    #[test]
    fn rule_point_indexer_to_cells_equals_one_to_cell_per_resolution() {
        let mut ix = PointIndexer::default();
        for i in 0..2_000 {
            let ll = LatLng::new(60.0 + i as f64 * 7e-5, 25.0 - i as f64 * 3e-5).unwrap();
            let [a, b, c] = ix.to_cells(ll, [Resolution::Twelve, Resolution::Nine, Resolution::Fifteen]);
            assert_eq!(
                [a, b, c],
                [12, 9, 15].map(|r| ll.to_cell(Resolution::try_from(r).unwrap()))
            );
        }
    }

    #[test]
    fn rule_point_indexer_takes_the_fast_paths_on_a_trace() {
        // Not a speed assertion: consecutive fixes (11 m apart, ~1 res-12 cell) mostly avoid h3o,
        // the reason the indexer exists.
        let mut ix = PointIndexer::default();
        for i in 0..1_000 {
            let ll = LatLng::new(52.5 + i as f64 * 1e-4, 13.4).unwrap();
            assert_eq!(ix.to_cell(ll, Resolution::Twelve), ll.to_cell(Resolution::Twelve));
        }
        assert!(ix.fallbacks <= 3, "{} of 1000 points went to h3o", ix.fallbacks);
    }

    #[test]
    fn rule_hexes_of_two_resolutions_are_never_adjacent() {
        let ll = LatLng::new(52.5, 13.4).unwrap();
        let [(_, a), (_, b)] = PointIndexer::default().to_cells_hex(ll, [Resolution::Twelve, Resolution::Eleven]);
        let (a, b) = (a.unwrap(), b.unwrap());
        let moved = Hex {
            ijk: Ijk::new(a.ijk.i + 1, a.ijk.j, a.ijk.k),
            ..a
        };
        assert!(a.adjacent(moved), "same resolution, next hexagon");
        assert!(!Hex { res: b.res, ..moved }.adjacent(a), "{a:?} {b:?}");
    }

    #[test]
    fn rule_digit_rotation_is_none_for_pentagon_base_cells() {
        let pentagon = CellIndex::base_cells().find(|c| c.is_pentagon()).unwrap();
        let ll = LatLng::from(pentagon.center_child(Resolution::Ten).unwrap());
        let c = ll.to_cell(Resolution::Ten);
        assert!(c.base_cell().is_pentagon());
        assert_eq!(digit_rotation(&[Ijk::default(); 16], 10, c), None);
    }
}
