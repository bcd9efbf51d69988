//! The upload server under load: `tessera serve` as a child process on loopback, N signed uploads
//! of distinct small traces from C client threads (the real client, which retries transient
//! failures), optionally SIGKILLed and restarted K times mid-run. Prints throughput, latency
//! percentiles, refusals and lost uploads (accepted but not in the lake afterwards).
//!
//! `tessera-upload-load --bin target/release/tessera --uploads 10000 --concurrency 16,256,1024 [--kills 3]`

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_net::client::Client;
use tessera_net::signing::DeviceKey;

const DEVICES: usize = 64;

fn arg(name: &str) -> Option<String> {
    let a: Vec<String> = std::env::args().collect();
    a.iter().position(|x| x == name).and_then(|i| a.get(i + 1).cloned())
}

fn serve(bin: &Path, lake: &Path, registry: &Path, port: u16) -> Child {
    loop {
        let mut c = Command::new(bin)
            .args([
                "serve",
                "--init",
                "--lake",
                lake.to_str().unwrap(),
                "--registry",
                registry.to_str().unwrap(),
            ])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tessera serve");
        let mut line = String::new();
        let _ = BufReader::new(c.stdout.as_mut().unwrap()).read_line(&mut line);
        if line.contains("listening") {
            return c;
        }
        let _ = c.wait();
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One load run; returns its lake's directory, to be removed only after the last run: on ext4
/// without a journal (this VM's root file system) an inode freed in the last 60–300 s is skipped,
/// one buffer lookup each, when a file is created — removing a 10,000-upload lake right before
/// the next run makes that run's file creation several times slower. (For the same reason, leave a
/// few minutes between invocations.)
fn run(bin: &Path, uploads: usize, threads: usize, kills: usize, base: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let registry = dir.path().join("registry.csv");
    let mut csv = String::from("device_id,wallet,pubkey\n");
    for i in 0..DEVICES {
        csv.push_str(&format!(
            "load-{i:02},0x{:040x},{}\n",
            i + 1,
            DeviceKey::from_seed([i as u8 + 1; 32]).public_hex()
        ));
    }
    std::fs::write(&registry, csv).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Arc::new(Mutex::new(serve(bin, &lake, &registry, port)));
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let results = Arc::new(Mutex::new(Vec::with_capacity(uploads)));
    let t0 = Instant::now();
    let killer = {
        let (server, done, bin, lake, registry) = (
            server.clone(),
            done.clone(),
            bin.to_path_buf(),
            lake.clone(),
            registry.clone(),
        );
        std::thread::spawn(move || {
            let mut n = 0;
            while n < kills && !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1500));
                let mut s = server.lock().unwrap();
                let _ = s.kill();
                let _ = s.wait();
                *s = serve(&bin, &lake, &registry, port);
                n += 1;
            }
            n
        })
    };
    let clients: Vec<_> = (0..threads)
        .map(|t| {
            let (next, results) = (next.clone(), results.clone());
            let base = base.to_vec();
            std::thread::Builder::new()
                .stack_size(256 << 10)
                .spawn(move || {
                    let dev = t % DEVICES;
                    let mut c = Client::new(
                        &format!("http://127.0.0.1:{port}"),
                        &format!("load-{dev:02}"),
                        DeviceKey::from_seed([dev as u8 + 1; 32]),
                    );
                    c.attempts = 12;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= uploads {
                            break;
                        }
                        let mut body = format!("# upload {i}\n").into_bytes();
                        body.extend_from_slice(&base);
                        let t1 = Instant::now();
                        let r = c.upload_bytes(&format!("{i}.nmea"), &body);
                        let lat = t1.elapsed();
                        results
                            .lock()
                            .unwrap()
                            .push((r.status, lat, blake3::hash(&body), r.attempts));
                    }
                })
                .unwrap()
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let secs = t0.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let killed = killer.join().unwrap();
    let server_cpu = cpu_seconds(server.lock().unwrap().id());
    let results = results.lock().unwrap();
    let mut lat: Vec<Duration> = results.iter().map(|r| r.1).collect();
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0;
    let accepted: Vec<_> = results.iter().filter(|r| r.0 == 200 || r.0 == 201).collect();
    let lost = accepted
        .iter()
        .filter(|r| !lake.join(format!("sources/{}.json", r.2.to_hex())).is_file())
        .count();
    let retried = results.iter().filter(|r| r.3 > 1).count();
    let mut failed = std::collections::BTreeMap::new();
    for r in results.iter().filter(|r| r.0 != 200 && r.0 != 201) {
        *failed.entry(r.0).or_insert(0usize) += 1;
    }
    // Server CPU per upload (user + system, the last server process only: without kills, the
    // whole run) — steadier than uploads/s on a VM whose neighbours come and go.
    let cpu = if killed == 0 {
        format!("; server CPU {:.2} ms/upload", server_cpu * 1000.0 / uploads as f64)
    } else {
        String::new()
    };
    println!(
        "{uploads} uploads, {threads} clients, {killed} SIGKILL+restart: {:.0} uploads/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.0} ms; accepted {}, lost {lost}, retried {retried}, failed by status {failed:?}{cpu}",
        uploads as f64 / secs,
        p(0.5),
        p(0.99),
        p(1.0),
        accepted.len()
    );
    let mut s = server.lock().unwrap();
    let _ = s.kill();
    let _ = s.wait();
    drop(s);
    dir
}

/// User + system CPU seconds of a live process (`/proc/<pid>/stat` fields 14 and 15); 0 when
/// unreadable.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised command name (which may contain spaces).
    let rest = stat.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz.max(1.0)
}

fn main() {
    let bin = PathBuf::from(arg("--bin").unwrap_or_else(|| "target/release/tessera".into()));
    if !bin.is_file() {
        eprintln!(
            "tessera-upload-load: no tessera binary at {} (build it with `cargo build --release -p tessera-cli`, or pass --bin PATH)",
            bin.display()
        );
        std::process::exit(2);
    }
    let uploads: usize = arg("--uploads").map_or(10_000, |v| v.parse().unwrap());
    let kills: usize = arg("--kills").map_or(0, |v| v.parse().unwrap());
    let conc: Vec<usize> = arg("--concurrency")
        .unwrap_or_else(|| "16,256,1024".into())
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    let fleet = tessera::simulate::simulate(&tessera::simulate::SimConfig {
        drivers: 4,
        epochs: 1,
        trips: 1,
        minutes: 1,
        ..Default::default()
    });
    let base = fleet.files[0].bytes.clone();
    println!("body ~{} bytes; tessera serve at {}", base.len() + 16, bin.display());
    let lakes: Vec<tempfile::TempDir> = conc.iter().map(|&c| run(&bin, uploads, c, kills, &base)).collect();
    drop(lakes);
}
