//! Honest drivers under fixed-time traffic lights: the false positive of the constant-offset copy
//! rule found on 2026-12-05, kept as a fleet the trust tests run.
//!
//! Every intersection of a 16 × 16 grid (blocks of 180 m) has a light, and all of them switch
//! together on one cycle of [`CYCLE_S`] seconds: east–west green for 42 s, amber 3 s, then
//! north–south green for 42 s, amber 3 s. Drivers accelerate to their own cruising speed
//! (11–13.5 m/s), brake for a red light at its stop line, or behind the cars already queued
//! there (0–3, 7 m each), and move off when it turns green, after their reaction time (1–2 s)
//! and 2 s for each car ahead. Routes alternate long runs along an avenue with short ones on a
//! cross street. The receiver error is the attack fleet's honest one (AR(1) drift scaled by
//! HDOP, canyons, multipath outliers).
//!
//! Two honest cars on one avenue a whole number of cycles apart are released together at each
//! light they both stop at, so their anchors keep one time offset while the queues, speeds and
//! reactions agree; a queue or a green one catches and the other does not breaks the rhythm.
//! Everything is a pure function of the seed, like [`super::attacks`].

use super::attacks::{nmea, signal, wallet, AttackFile, AttackFleet, Fx, HONEST};
use super::Rng;
use crate::epoch::Epoch;

/// The common signal cycle, seconds (lights switch on UTC seconds, all at once).
pub const CYCLE_S: i64 = 90;
/// Green of one direction, seconds, from the start of its half of the cycle; amber fills the rest.
const GREEN_S: i64 = 42;
const BLOCK_M: f64 = 180.0;
const SIZE: i64 = 16;
/// Where a car stops: this far before the intersection's centre, and 7 m more per queued car.
const STOP_LINE_M: f64 = 6.0;
const CAR_M: f64 = 7.0;
const TRIP_S: i64 = 1200;
/// A driver's cruising speed varies by up to this share from block to block (traffic).
const VARY: f64 = 0.08;

/// Whether a car heading `dir` (0 E, 1 N, 2 W, 3 S) has green at UTC second `t`.
fn green(dir: i64, t: i64) -> bool {
    let phase = (t + if dir % 2 == 0 { 0 } else { CYCLE_S / 2 }).rem_euclid(CYCLE_S);
    phase < GREEN_S
}

/// The first second at or after `t` at which `dir` has green.
fn next_green(dir: i64, t: i64) -> i64 {
    (t..t + CYCLE_S).find(|&s| green(dir, s)).unwrap_or(t)
}

/// A driver's habits: cruising speed (m/s) and reaction time at a green light (s).
#[derive(Clone, Copy)]
struct Habits {
    speed: f64,
    reaction: i64,
}

/// Where a car is: the intersection it last passed, its heading, the intersections left on this
/// leg of the route (the last one is a turn), and its position (m).
struct Place {
    at: (i64, i64),
    dir: i64,
    left: i64,
    pos: (f64, f64),
}

impl Place {
    fn step_of(dir: i64) -> (i64, i64) {
        [(1, 0), (0, 1), (-1, 0), (0, -1)][dir as usize]
    }

    /// Metres to the next intersection.
    fn to_next(&self) -> f64 {
        let (dx, dy) = Self::step_of(self.dir);
        let next = ((self.at.0 + dx) as f64 * BLOCK_M, (self.at.1 + dy) as f64 * BLOCK_M);
        (next.0 - self.pos.0).abs() + (next.1 - self.pos.1).abs()
    }

    /// A new leg from the intersection `at`: an avenue (east–west, 5–12 blocks) after a street,
    /// a street (1–3 blocks) after an avenue, turned around where the grid ends.
    fn new_leg(&mut self, rng: &mut Rng, avenue: bool) {
        let mut dir = if avenue { 0 } else { 1 } + 2 * rng.range(2) as i64;
        let want = if avenue { 5 + rng.range(8) } else { 1 + rng.range(3) } as i64;
        let room = |d: i64| {
            let (dx, dy) = Self::step_of(d);
            let i = if dx != 0 { self.at.0 } else { self.at.1 };
            if dx + dy > 0 {
                SIZE - 1 - i
            } else {
                i
            }
        };
        if room(dir) == 0 {
            dir = (dir + 2) % 4;
        }
        self.dir = dir;
        self.left = want.min(room(dir)).max(1);
    }

    /// Move `m` metres along the route; `avenue` says which kind the current leg is.
    fn advance(&mut self, rng: &mut Rng, mut m: f64, avenue: &mut bool) -> bool {
        let mut crossed = false;
        while m > 0.0 {
            let rem = self.to_next();
            let step = m.min(rem);
            let (dx, dy) = Self::step_of(self.dir);
            self.pos = (self.pos.0 + dx as f64 * step, self.pos.1 + dy as f64 * step);
            m -= step;
            if step >= rem {
                self.at = (self.at.0 + dx, self.at.1 + dy);
                self.pos = (self.at.0 as f64 * BLOCK_M, self.at.1 as f64 * BLOCK_M);
                self.left -= 1;
                crossed = true;
                if self.left == 0 {
                    *avenue = !*avenue;
                    self.new_leg(rng, *avenue);
                }
            }
        }
        crossed
    }
}

/// One 20-minute trip from a random intersection starting at UTC ms `start_ms`, one fix a second.
fn trip(rng: &mut Rng, start_ms: i64, h: Habits) -> Vec<Fx> {
    let at = (rng.range(SIZE as u64) as i64, rng.range(SIZE as u64) as i64);
    let mut p = Place {
        at,
        dir: 0,
        left: 0,
        pos: (at.0 as f64 * BLOCK_M, at.1 as f64 * BLOCK_M),
    };
    let mut avenue = true;
    p.new_leg(rng, avenue);
    let (mut v, mut queue, mut depart): (f64, Option<i64>, Option<i64>) = (0.0, None, None);
    let (mut canyon, mut err) = (0i64, (0.0f64, 0.0f64));
    let mut cruise = h.speed;
    let mut stopping = false;
    let mut out = Vec::with_capacity(TRIP_S as usize);
    for sec in 0..TRIP_S {
        let t_ms = start_ms + sec * 1000;
        let t = t_ms.div_euclid(1000);
        let mut moved = 0.0;
        if depart.is_some_and(|d| t < d) {
            v = 0.0;
        } else {
            depart = None;
            let cars = *queue.get_or_insert_with(|| if rng.f() < 0.6 { rng.range(4) as i64 } else { 0 });
            let line = p.to_next() - STOP_LINE_M - CAR_M * cars as f64;
            let turning = p.left == 1;
            let eta = if v > 1.0 { line / v } else { line / 2.0 + 3.0 };
            let clear = green(p.dir, t) && green(p.dir, t + eta.ceil() as i64 + 1);
            // Brake for a light that will be red, once it is seen early enough to stop at 3 m/s²
            // (and go on if it turns green meanwhile); never past the stop line while braking.
            stopping = !clear && (stopping || line >= v * v / 6.0);
            let want = if stopping {
                (4.0 * line.max(0.0)).sqrt().min(cruise)
            } else if turning && line < v * v / 4.0 + v {
                5.0
            } else {
                cruise
            };
            v = (v + (want - v).clamp(-4.0, 2.0)).max(0.0);
            moved = v;
            if stopping && line - v < 1.0 {
                (moved, v) = (line.max(0.0), 0.0);
                depart = Some(next_green(p.dir, t + 1) + h.reaction + rng.range(2) as i64 + 2 * cars);
                stopping = false;
            }
        }
        if p.advance(rng, moved, &mut avenue) {
            queue = None;
            cruise = h.speed * (1.0 + VARY * (2.0 * rng.f() - 1.0));
        }
        let (hdop, sats, e) = signal(rng, HONEST, &mut canyon, &mut err);
        out.push(Fx {
            t: t_ms,
            x: p.pos.0 + e.0,
            y: p.pos.1 + e.1,
            v: (v + rng.normal() * 0.1).max(0.0),
            course: [90.0, 0.0, 270.0, 180.0][p.dir as usize],
            hdop: (hdop * 10.0).round() / 10.0,
            sats,
        });
    }
    out
}

/// `drivers` honest drivers (`signals-NN`, label `honest_signals`, a wallet each), two 20-minute
/// trips each on days and at times (07:00–19:00, whole seconds) drawn from `seed`, in `epoch`;
/// each file is received five minutes after it ends. NMEA (RMC + GGA at 1 Hz).
///
/// ```
/// use tessera::simulate::signals::signal_grid;
/// let f = signal_grid(3, "2026-W47".parse().unwrap(), 4);
/// assert_eq!((f.files.len(), f.labels.len()), (8, 4));
/// assert_eq!(f, signal_grid(3, "2026-W47".parse().unwrap(), 4));
/// ```
pub fn signal_grid(seed: u64, epoch: Epoch, drivers: usize) -> AttackFleet {
    let mut rng = Rng(seed ^ 0x5167_4e41_4c53);
    let mut fleet = AttackFleet {
        files: Vec::new(),
        registry_csv: "device_id,wallet\n".into(),
        labels: Vec::new(),
        epoch,
    };
    for d in 0..drivers {
        let dev = format!("signals-{d:02}");
        fleet.labels.push((dev.clone(), "honest_signals".into()));
        fleet.registry_csv.push_str(&format!("{dev},{}\n", wallet(&dev)));
        let h = Habits {
            speed: 11.0 + rng.f() * 2.5,
            reaction: 1 + rng.range(2) as i64,
        };
        for n in 0..2 {
            let day = rng.range(7) as i64;
            let start = epoch.start_ms() + day * 86_400_000 + (7 * 3600 + rng.range(12 * 3600) as i64) * 1000;
            let fixes = trip(&mut rng, start, h);
            let received_ms = fixes.last().map_or(start, |f| f.t) + 300_000;
            fleet.files.push(AttackFile {
                device: dev.clone(),
                name: format!("trip{n}.nmea"),
                bytes: nmea(&fixes),
                received_ms,
            });
        }
    }
    fleet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_cars_stop_at_red_lights_and_move_off_on_green_after_reaction_and_queue() {
        let (mut stops, mut rng) = (0, Rng(5));
        for n in 0..20 {
            let h = Habits {
                speed: 11.0 + 0.1 * n as f64,
                reaction: 1 + n % 2,
            };
            let f = trip(&mut rng, 1_700_000_000_000 + n * 7_000, h);
            let mut still = 0;
            for w in f.windows(2) {
                if w[1].v < 0.5 {
                    still += 1;
                    continue;
                }
                if still >= 5 && w[1].v > 1.0 {
                    // moved off: on green, after the reaction, ≤ 1 s more and 2 s per queued car
                    let (dir, t) = (
                        [90.0, 0.0, 270.0, 180.0]
                            .iter()
                            .position(|&c| c == w[1].course)
                            .unwrap() as i64,
                        w[1].t / 1000,
                    );
                    let since = (0..CYCLE_S).find(|&s| !green(dir, t - s - 1)).unwrap();
                    assert!(
                        green(dir, t) && since >= h.reaction && since <= h.reaction + 1 + 6 + 1,
                        "t {t} dir {dir} {since} s into green"
                    );
                    stops += 1;
                }
                still = 0;
            }
        }
        assert!(stops > 100, "{stops}");
    }

    #[test]
    fn signal_grid_is_a_pure_function_of_its_seed() {
        let e: Epoch = "2026-W47".parse().unwrap();
        assert_eq!(signal_grid(1, e, 3), signal_grid(1, e, 3));
        assert_ne!(signal_grid(1, e, 3).files, signal_grid(2, e, 3).files);
    }
}
