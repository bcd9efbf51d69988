//! The driver's path through the real binaries: a receiver on a serial port (pty) → `tessera
//! capture` → `tessera keygen` + `tessera upload` → `tessera serve` → `tessera epoch run` → a
//! reward with a proof. And a server killed mid-upload leaves nothing that later counts.

use serialport::{SerialPort, TTYPort};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
}

fn ok(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn sample(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sample").join(p)
}

/// Start `tessera serve` on a free loopback port; returns the child and its URL.
fn serve(lake: &Path, registry: &Path, env: &[(&str, &str)]) -> (Child, String) {
    let mut c = bin();
    c.args([
        "serve",
        "--init",
        "--lake",
        lake.to_str().unwrap(),
        "--registry",
        registry.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    (child, url)
}

fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(format!("{name}.key"));
    let public = ok(bin().args(["keygen", "--out", key.to_str().unwrap()]))
        .trim()
        .to_string();
    assert_eq!(public.len(), 64);
    (key, public)
}

#[test]
fn a_driver_goes_from_a_serial_port_to_a_claimable_reward() {
    let d = tempfile::tempdir().unwrap();
    // 1. The receiver: a pty whose slave is linked as the device path.
    let (mut master, slave) = TTYPort::pair().unwrap();
    let link = d.path().join("ttyUSB0");
    std::os::unix::fs::symlink(slave.name().unwrap(), &link).unwrap();
    drop(slave);
    let captured = d.path().join("captured");
    let capture = bin()
        .args([
            "capture",
            "--port",
            link.to_str().unwrap(),
            "--baud",
            "auto",
            "--out",
            captured.to_str().unwrap(),
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let trace = std::fs::read(sample("car-001/2026-W46-trip1.nmea")).unwrap();
    for chunk in trace.chunks(1024) {
        master.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(500));
    // Ctrl-C closes the file cleanly.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(capture.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = capture.wait_with_output().unwrap();
    assert!(out.status.success());
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["reconnects"], 0);
    let files: Vec<PathBuf> = std::fs::read_dir(&captured)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].extension().unwrap(), "gps");

    // 2. The device key, registered with a wallet.
    let (key, public) = keygen(d.path(), "car-001");
    let wallet = "0x00000000000000000000000000000000000000a1";
    let registry = d.path().join("registry.csv");
    std::fs::write(
        &registry,
        format!("device_id,wallet,pubkey\ncar-001,{wallet},{public}\n"),
    )
    .unwrap();

    // 3. Upload to the server.
    let lake = d.path().join("lake");
    let (mut server, url) = serve(&lake, &registry, &[]);
    let up: serde_json::Value = serde_json::from_str(&ok(bin()
        .args([
            "upload",
            "--server",
            &url,
            "--device",
            "car-001",
            "--key",
            key.to_str().unwrap(),
            "--json",
        ])
        .arg(&files[0])))
    .unwrap();
    assert_eq!(up[0]["status"], 201, "{up}");
    assert!(up[0]["response"]["fixes"].as_u64().unwrap() > 500);
    // A stolen trace re-signed with another key is refused.
    let (other_key, _) = keygen(d.path(), "thief");
    let o = bin()
        .args([
            "upload",
            "--server",
            &url,
            "--device",
            "car-001",
            "--key",
            other_key.to_str().unwrap(),
            "--attempts",
            "1",
        ])
        .arg(&files[0])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("bad_signature"));
    server.kill().unwrap();
    server.wait().unwrap();

    // 4. The epoch: the driver is paid the whole pool, with a proof.
    let s: serde_json::Value = serde_json::from_str(&ok(bin().args([
        "epoch",
        "run",
        "--lake",
        lake.to_str().unwrap(),
        "--epoch",
        "2026-W46",
        "--pool",
        "5000",
        "--registry",
        registry.to_str().unwrap(),
        "--json",
    ])))
    .unwrap();
    assert_eq!(s["allocated"], "5000");
    assert_eq!(s["top"][0]["recipient"], wallet);
    let proof: serde_json::Value = serde_json::from_str(&ok(bin().args([
        "proof",
        "--lake",
        lake.to_str().unwrap(),
        "--epoch",
        "2026-W46",
        wallet,
    ])))
    .unwrap();
    assert_eq!(proof["amount"], "5000");
    assert_eq!(proof["root"], proof["leaf"], "a single recipient is the whole tree");
}

fn sources_committed(lake: &Path) -> usize {
    std::fs::read_dir(lake.join("sources")).map_or(0, |rd| {
        rd.flatten()
            .filter(|e| {
                e.file_name().to_string_lossy().ends_with(".json") && !e.file_name().to_string_lossy().starts_with('.')
            })
            .count()
    })
}

/// `tessera` turns transparent huge pages off for itself (`main.rs`; the kernel zeroing fresh
/// 2 MiB pages cost an epoch 15 % of its CPU), and `MIMALLOC_ALLOW_THP=1` turns them back on:
/// read from a running `tessera serve`'s `/proc/PID/status` (`THP_enabled`, Linux 5.0+).
#[test]
fn tessera_runs_without_transparent_huge_pages_unless_the_environment_asks() {
    // The children inherit this process's switch: a kernel without THP (or a harness that
    // turned it off) leaves nothing to turn on or off.
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    if !own.lines().any(|l| l.split_whitespace().eq(["THP_enabled:", "1"])) {
        eprintln!("THP is not enabled for this process (or /proc has no THP_enabled line): nothing to read");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let registry = d.path().join("registry.csv");
    std::fs::write(&registry, "").unwrap();
    for (env, want) in [(None, "0"), (Some("1"), "1"), (Some("0"), "0")] {
        let lake = d.path().join(format!("lake-{env:?}"));
        let env: Vec<(&str, &str)> = env.map(|v| ("MIMALLOC_ALLOW_THP", v)).into_iter().collect();
        let (mut server, _url) = serve(&lake, &registry, &env);
        let status = std::fs::read_to_string(format!("/proc/{}/status", server.id())).unwrap();
        server.kill().unwrap();
        server.wait().unwrap();
        let line = status.lines().find(|l| l.starts_with("THP_enabled:")).unwrap();
        assert_eq!(line.split_whitespace().nth(1), Some(want), "{env:?}: {line}");
    }
}

#[test]
fn server_killed_in_the_middle_of_a_body_leaves_nothing() {
    let d = tempfile::tempdir().unwrap();
    let (_key, public) = keygen(d.path(), "car-001");
    let registry = d.path().join("registry.csv");
    std::fs::write(
        &registry,
        format!("car-001,0x00000000000000000000000000000000000000a1,{public}\n"),
    )
    .unwrap();
    let lake = d.path().join("lake");
    let (mut server, url) = serve(&lake, &registry, &[]);
    let addr = url.trim_start_matches("http://");
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    let body = std::fs::read(sample("car-001/2026-W46-trip1.nmea")).unwrap();
    write!(tcp, "POST /v1/uploads HTTP/1.1\r\nhost: {addr}\r\nx-tessera-device: car-001\r\nx-tessera-timestamp: 0\r\nx-tessera-signature: 00\r\ncontent-length: {}\r\n\r\n", body.len()).unwrap();
    tcp.write_all(&body[..body.len() / 2]).unwrap();
    tcp.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    assert_eq!(sources_committed(&lake), 0);
    let leftovers: Vec<_> = std::fs::read_dir(lake.join("sources"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[cfg(feature = "failpoints")]
#[test]
fn server_killed_while_storing_leaves_nothing_that_counts_and_the_retry_stores_it() {
    let d = tempfile::tempdir().unwrap();
    let (key, public) = keygen(d.path(), "car-001");
    let registry = d.path().join("registry.csv");
    std::fs::write(
        &registry,
        format!("car-001,0x00000000000000000000000000000000000000a1,{public}\n"),
    )
    .unwrap();
    let lake = d.path().join("lake");
    let file = sample("car-001/2026-W46-trip1.nmea");
    // Park the server after the raw bytes, fixes and rejections are on disk but before the
    // metadata that commits the source, then SIGKILL it there.
    let (mut server, url) = serve(&lake, &registry, &[("FAILPOINTS", "ingest-before-meta=sleep(60000)")]);
    let mut upload = bin()
        .args([
            "upload",
            "--server",
            &url,
            "--device",
            "car-001",
            "--key",
            key.to_str().unwrap(),
            "--attempts",
            "1",
        ])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while std::fs::read_dir(lake.join("fixes")).map_or(0, |r| r.count()) == 0 {
        assert!(t.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(
        !upload.wait().unwrap().success(),
        "the client must not have been told 201"
    );
    assert_eq!(sources_committed(&lake), 0, "a half-stored upload must not count");
    let lake_api = tessera::lake::Lake::open(&lake).unwrap();
    assert!(lake_api.sources().unwrap().is_empty());
    // The device retries against a healthy server: stored, as new, consistent.
    let (mut server, url) = serve(&lake, &registry, &[]);
    let up: serde_json::Value = serde_json::from_str(&ok(bin()
        .args([
            "upload",
            "--server",
            &url,
            "--device",
            "car-001",
            "--key",
            key.to_str().unwrap(),
            "--json",
        ])
        .arg(&file)))
    .unwrap();
    assert_eq!(up[0]["status"], 201, "{up}");
    server.kill().unwrap();
    server.wait().unwrap();
    let metas = lake_api.sources().unwrap();
    assert_eq!(metas.len(), 1);
    let (fixes, _) = lake_api.read_fixes(&metas[0].hash).unwrap();
    assert_eq!(fixes.len() as u64, metas[0].fixes);
    // What the killed server left was removed when the next one started: one source's files.
    for dir in ["fixes", "rejections"] {
        let names: Vec<String> = std::fs::read_dir(lake.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [format!("{}.parquet", metas[0].hash)], "{dir}");
    }
}
