//! Malformed input must never panic: every corpus log (and the sample fleet) is mutated many
//! times — bytes flipped, inserted, deleted, lines cut and spliced — and parsed; the line
//! accounting must still balance.

#[path = "support/corpus.rs"]
mod support;

use tessera::ingest;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const ALPHABET: &[u8] = b"$*,.0123456789ABCDEFNSEWVAGPRMCGLL\r\n\0\xff#[]";

fn mutate(rng: &mut Rng, src: &[u8]) -> Vec<u8> {
    let mut b = src.to_vec();
    for _ in 0..1 + rng.below(8) {
        if b.is_empty() {
            b.push(b'$');
        }
        let i = rng.below(b.len());
        match rng.below(5) {
            0 => b[i] = ALPHABET[rng.below(ALPHABET.len())],
            1 => b.insert(i, ALPHABET[rng.below(ALPHABET.len())]),
            2 => {
                b.remove(i);
            }
            3 => b.truncate(i),
            _ => {
                let j = rng.below(b.len());
                let (a, z) = (i.min(j), i.max(j));
                let chunk = b[a..z.min(a + 200)].to_vec();
                let k = rng.below(b.len());
                b.splice(k..k, chunk);
            }
        }
    }
    b
}

fn inputs() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = Vec::new();
    let root = support::corpus("").unwrap_or_default();
    for sub in ["nmea/gpsd", "nmea/other", "gpx/gpxpy", "gpx/georust-gpx"] {
        if let Ok(rd) = std::fs::read_dir(root.join(sub)) {
            let mut paths: Vec<_> = rd.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
            paths.sort();
            for p in paths {
                let bytes = std::fs::read(&p).unwrap();
                // Windows of at most 4 KiB keep the test fast while covering every log.
                v.push(bytes[..bytes.len().min(4096)].to_vec());
            }
        }
    }
    let fleet = tessera::simulate::simulate(&tessera::simulate::SimConfig {
        drivers: 6,
        epochs: 1,
        trips: 1,
        minutes: 1,
        ..Default::default()
    });
    v.extend(
        fleet
            .files
            .into_iter()
            .map(|f| f.bytes[..f.bytes.len().min(4096)].to_vec()),
    );
    v
}

#[test]
fn mutated_inputs_never_panic_and_always_balance() {
    let mut rng = Rng(20261125);
    let mut runs = 0;
    for src in inputs() {
        for _ in 0..250 {
            let m = mutate(&mut rng, &src);
            let p = ingest::parse(&m);
            assert!(p.lines.balanced(), "unbalanced on {:?}", String::from_utf8_lossy(&m));
            assert_eq!(p.lines.rejected as usize, p.rejections.len());
            for f in &p.fixes {
                assert!(f.lat.abs() <= 90.0 && f.lon.abs() <= 180.0);
            }
            runs += 1;
        }
    }
    assert!(runs >= 300);
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(7);
    for n in [0usize, 1, 2, 7, 80, 1000, 10_000] {
        for _ in 0..20 {
            let b: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            assert!(ingest::parse(&b).lines.balanced());
        }
    }
}
