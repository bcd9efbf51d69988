//! The upload server on a real loopback port, driven by the real client and by hand-made
//! requests: every refusal has its status and JSON reason; accepted bytes are in the lake.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera::lake::Lake;
use tessera::registry::Registry;
use tessera_net::client::Client;
use tessera_net::server::{AppState, Limits};
use tessera_net::signing::{DeviceKey, H_DEVICE, H_SIGNATURE, H_TIMESTAMP};

struct Server {
    addr: SocketAddr,
    lake: Lake,
    dir: Option<tempfile::TempDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn key(n: u8) -> DeviceKey {
    DeviceKey::from_seed([n; 32])
}

fn start(max_body: usize) -> Server {
    launch(
        tempfile::tempdir().unwrap(),
        Limits {
            max_body,
            max_skew_ms: 60_000,
            ..Limits::default()
        },
    )
}

fn launch(dir: tempfile::TempDir, limits: Limits) -> Server {
    let lake = Lake::open(dir.path()).unwrap();
    let mut csv = String::from("device_id,wallet,pubkey\n");
    for (i, dev) in ["car-1", "car-2"].iter().enumerate() {
        csv.push_str(&format!(
            "{dev},0x00000000000000000000000000000000000000a{i},{}\n",
            key(i as u8 + 1).public_hex()
        ));
    }
    csv.push_str("car-nokey,0x00000000000000000000000000000000000000b0,\n");
    for i in 0..64 {
        csv.push_str(&format!(
            "load-{i:02},0x00000000000000000000000000000000000000c0,{}\n",
            key(100 + i).public_hex()
        ));
    }
    let registry = Registry::parse(csv.as_bytes(), "test").unwrap();
    let state = AppState::new(lake.clone(), registry, limits).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (atx, arx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            atx.send(l.local_addr().unwrap()).unwrap();
            tessera_net::server::serve(l, state, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
    });
    let addr = arx.recv().unwrap();
    Server {
        addr,
        lake,
        dir: Some(dir),
        stop: Some(tx),
        thread: Some(thread),
    }
}

fn trace(seed: u64) -> Vec<u8> {
    let f = tessera::simulate::simulate(&tessera::simulate::SimConfig {
        seed,
        drivers: 4,
        epochs: 1,
        trips: 1,
        minutes: 1,
        ..Default::default()
    });
    f.files[0].bytes.clone()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// A raw signed request: (status, JSON).
fn raw(s: &Server, device: &str, ts: i64, sig: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let mut r = agent()
        .post(format!("http://{}/v1/uploads", s.addr))
        .header(H_DEVICE, device)
        .header(H_TIMESTAMP, ts.to_string())
        .header(H_SIGNATURE, sig)
        .send(body)
        .unwrap();
    let status = r.status().as_u16();
    (
        status,
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap(),
    )
}

#[test]
fn valid_upload_is_stored_and_the_same_bytes_again_are_a_duplicate() {
    let s = start(1 << 20);
    let body = trace(1);
    let c1 = Client::new(&format!("http://{}", s.addr), "car-1", key(1));
    let r = c1.upload_bytes("t.nmea", &body);
    assert_eq!(r.status, 201, "{:?}", r.response);
    let hash = blake3::hash(&body).to_hex().to_string();
    assert_eq!(r.response["source"], hash);
    assert!(r.response["fixes"].as_u64().unwrap() > 50);
    assert!(s.lake.root().join(format!("sources/{hash}.nmea")).exists());
    assert_eq!(
        std::fs::read(s.lake.root().join(format!("sources/{hash}.nmea"))).unwrap(),
        body
    );
    // Again from the same device (new signature) and from another device: stored once.
    assert_eq!(c1.upload_bytes("t.nmea", &body).status, 200);
    let c2 = Client::new(&format!("http://{}", s.addr), "car-2", key(2));
    let r2 = c2.upload_bytes("copy.nmea", &body);
    assert_eq!((r2.status, r2.response["duplicate"].as_bool()), (200, Some(true)));
    assert_eq!(r2.response["device"], "car-1");
    assert_eq!(s.lake.sources().unwrap().len(), 1);
}

#[test]
fn rule_a_refused_body_up_to_a_mib_is_read_so_the_client_gets_its_413_not_a_broken_pipe() {
    // The refusal comes from the declared length, before the body is read; the server then
    // reads and drops up to 1 MiB so the client can finish writing and read the answer. Far
    // more than socket buffers hold: without the drain the client's write fails (EPIPE/reset).
    let s = start(64 * 1024);
    let now = tessera_net::now_ms();
    for _ in 0..5 {
        let big = vec![b'$'; 1000 * 1024];
        let (st, j) = raw(&s, "car-1", now, &key(1).sign_upload("car-1", now, &big), &big);
        assert_eq!((st, j["error"].as_str()), (413, Some("too_large")));
    }
}

#[test]
fn refusals_have_the_right_status_and_reason() {
    let s = start(64 * 1024);
    let body = trace(2);
    let now = tessera_net::now_ms();
    let good = key(1).sign_upload("car-1", now, &body);
    // wrong key
    let (st, j) = raw(&s, "car-1", now, &key(9).sign_upload("car-1", now, &body), &body);
    assert_eq!((st, j["error"].as_str()), (401, Some("bad_signature")));
    // tampered body
    let mut tampered = body.clone();
    tampered[100] ^= 1;
    let (st, j) = raw(&s, "car-1", now, &good, &tampered);
    assert_eq!((st, j["error"].as_str()), (401, Some("bad_signature")));
    // signature for another device id
    let (st, j) = raw(&s, "car-2", now, &good, &body);
    assert_eq!((st, j["error"].as_str()), (401, Some("bad_signature")));
    // valid, then replayed byte for byte
    assert_eq!(raw(&s, "car-1", now, &good, &body).0, 201);
    let (st, j) = raw(&s, "car-1", now, &good, &body);
    assert_eq!((st, j["error"].as_str()), (409, Some("replayed")));
    // unknown device, device without key
    let (st, j) = raw(&s, "car-99", now, &key(1).sign_upload("car-99", now, &body), &body);
    assert_eq!((st, j["error"].as_str()), (401, Some("unknown_device")));
    let (st, j) = raw(&s, "car-nokey", now, &good, &body);
    assert_eq!((st, j["error"].as_str()), (401, Some("unknown_device")));
    assert!(j["message"].as_str().unwrap().contains("no pubkey"));
    // stale and future timestamps
    let old = now - 3_600_000;
    let (st, j) = raw(&s, "car-1", old, &key(1).sign_upload("car-1", old, &body), &body);
    assert_eq!((st, j["error"].as_str()), (401, Some("stale_timestamp")));
    let fut = now + 3_600_000;
    let (st, j) = raw(&s, "car-1", fut, &key(1).sign_upload("car-1", fut, &body), &body);
    assert_eq!((st, j["error"].as_str()), (401, Some("future_timestamp")));
    // oversized
    let big = vec![b'$'; 200 * 1024];
    let (st, j) = raw(&s, "car-1", now, &key(1).sign_upload("car-1", now, &big), &big);
    assert_eq!((st, j["error"].as_str()), (413, Some("too_large")));
    // garbage that is no trace
    let junk = b"hello\nthis is not NMEA\n\x00\x01\x02".to_vec();
    let (st, j) = raw(&s, "car-1", now, &key(1).sign_upload("car-1", now, &junk), &junk);
    assert_eq!((st, j["error"].as_str()), (422, Some("not_a_trace")));
    // a Parquet fixes file is a lake format, not something a device records
    let pq = tessera::tables::to_parquet(
        &tessera::tables::fixes_schema(),
        &tessera::tables::fixes_to_batches("car-1", &[tessera::fix::Fix::new(now, 52.5, 13.4)]),
    )
    .unwrap();
    let (st, j) = raw(&s, "car-1", now, &key(1).sign_upload("car-1", now, &pq), &pq);
    assert_eq!((st, j["error"].as_str()), (422, Some("not_a_trace")));
    assert!(j["message"].as_str().unwrap_or_default().contains("Parquet"), "{j}");
    // missing headers
    let mut r = agent()
        .post(format!("http://{}/v1/uploads", s.addr))
        .send(&body[..])
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.body_mut().read_to_string().unwrap().contains("missing_header"));
    // Nothing refused reached the lake.
    assert_eq!(s.lake.sources().unwrap().len(), 1);
    // Metrics count every refusal by reason.
    let m = agent()
        .get(format!("http://{}/metrics", s.addr))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    for (reason, n) in [
        ("bad_signature", 3),
        ("replayed", 1),
        ("unknown_device", 2),
        ("too_large", 1),
        ("not_a_trace", 2),
        ("stale_timestamp", 1),
        ("future_timestamp", 1),
    ] {
        assert!(
            m.contains(&format!("tessera_uploads_refused_total{{reason=\"{reason}\"}} {n}\n")),
            "{reason}: {m}"
        );
    }
    assert!(m.contains("tessera_uploads_accepted_total 1\n"), "{m}");
    let h = agent()
        .get(format!("http://{}/health", s.addr))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(h.contains("\"ok\""));
}

#[test]
fn client_retries_until_the_server_comes_up() {
    // Reserve a port, start the server on it a little later.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let mut c = Client::new(&format!("http://{addr}"), "car-1", key(1));
    c.backoff = Duration::from_millis(150);
    c.attempts = 8;
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let reg = Registry::parse(
        format!(
            "car-1,0x00000000000000000000000000000000000000a1,{}\n",
            key(1).public_hex()
        )
        .as_bytes(),
        "r",
    )
    .unwrap();
    let st = AppState::new(lake.clone(), reg, Limits::default()).unwrap();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind(addr).await.unwrap();
            let _ = tokio::time::timeout(
                Duration::from_secs(10),
                tessera_net::server::serve(l, st, std::future::pending()),
            )
            .await;
        });
    });
    let r = c.upload_bytes("t.nmea", &trace(3));
    assert_eq!(r.status, 201, "{:?}", r.response);
    assert!(
        r.attempts > 1,
        "the first attempt cannot have reached a server: {}",
        r.attempts
    );
}

#[test]
fn load_many_concurrent_uploads_none_lost() {
    let s = Arc::new(start(1 << 20));
    const UPLOADS: usize = 320;
    const THREADS: usize = 16;
    let bodies: Vec<Vec<u8>> = (0..UPLOADS as u64).map(|i| trace(1000 + i)).collect();
    let bodies = Arc::new(bodies);
    let t0 = Instant::now();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (s, bodies) = (s.clone(), bodies.clone());
            std::thread::spawn(move || {
                let c = Client::new(
                    &format!("http://{}", s.addr),
                    &format!("load-{t:02}"),
                    key(100 + t as u8),
                );
                let mut lat = Vec::new();
                for i in (t..UPLOADS).step_by(THREADS) {
                    let t1 = Instant::now();
                    let r = c.upload_bytes(&format!("{i}.nmea"), &bodies[i]);
                    lat.push(t1.elapsed());
                    assert!(r.status == 201 || r.status == 200, "{:?}", r.response);
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let secs = t0.elapsed().as_secs_f64();
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0;
    let distinct: std::collections::BTreeSet<_> = bodies.iter().map(|b| *blake3::hash(b).as_bytes()).collect();
    assert_eq!(s.lake.sources().unwrap().len(), distinct.len(), "uploads lost");
    let m = agent()
        .get(format!("http://{}/metrics", s.addr))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let commits: usize = m
        .lines()
        .find_map(|l| l.strip_prefix("tessera_commit_batches_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=UPLOADS).contains(&commits), "{commits}");
    eprintln!("group commit: {UPLOADS} uploads in {commits} commits");
    eprintln!(
        "load: {UPLOADS} uploads ({} distinct, {:.0} KB avg) by {THREADS} threads in {secs:.2} s = {:.0} uploads/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        distinct.len(),
        bodies.iter().map(|b| b.len()).sum::<usize>() as f64 / UPLOADS as f64 / 1024.0,
        UPLOADS as f64 / secs,
        p(0.5),
        p(0.99),
        p(1.0)
    );
}

/// A request written by hand on a raw TCP connection: the headers, then `body` (maybe partial).
fn raw_tcp(s: &Server, headers: &[(&str, String)], content_length: usize, body: &[u8]) -> std::net::TcpStream {
    use std::io::Write;
    let mut t = std::net::TcpStream::connect(s.addr).unwrap();
    let mut req = format!("POST /v1/uploads HTTP/1.1\r\nhost: x\r\ncontent-length: {content_length}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    t.write_all(req.as_bytes()).unwrap();
    t.write_all(body).unwrap();
    t
}

/// The status line and body of the response on `t`, within `secs`.
fn response(t: &mut std::net::TcpStream, secs: u64) -> (u16, String) {
    use std::io::Read;
    t.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match t.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf);
                if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                    let len = head.lines().find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    });
                    if len.is_some_and(|n| rest.len() >= n) {
                        break;
                    }
                }
            }
            Err(e) => panic!("no response within {secs} s: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

fn signed_headers(device: &str, k: &DeviceKey, body: &[u8]) -> Vec<(&'static str, String)> {
    let now = tessera_net::now_ms();
    vec![
        (H_DEVICE, device.to_string()),
        (H_TIMESTAMP, now.to_string()),
        (H_SIGNATURE, k.sign_upload(device, now, body)),
    ]
}

#[test]
fn rule_a_signature_in_another_letter_case_is_the_same_signature_and_a_replay() {
    let s = start(1 << 20);
    let body = trace(11);
    let now = tessera_net::now_ms();
    let sig = key(1).sign_upload("car-1", now, &body);
    assert_eq!(raw(&s, "car-1", now, &sig, &body).0, 201);
    for variant in [
        sig.to_uppercase(),
        format!("{}{}", sig[..64].to_uppercase(), &sig[64..]),
    ] {
        let (st, j) = raw(&s, "car-1", now, &variant, &body);
        assert_eq!((st, j["error"].as_str()), (409, Some("replayed")), "{variant}");
    }
}

#[test]
fn rule_the_replay_cache_survives_a_restart() {
    let limits = Limits {
        max_skew_ms: 60_000,
        ..Limits::default()
    };
    let mut s = launch(tempfile::tempdir().unwrap(), limits.clone());
    let body = trace(12);
    let now = tessera_net::now_ms();
    let sig = key(1).sign_upload("car-1", now, &body);
    assert_eq!(raw(&s, "car-1", now, &sig, &body).0, 201);
    let dir = s.dir.take().unwrap();
    drop(s);
    let s = launch(dir, limits);
    let (st, j) = raw(&s, "car-1", now, &sig, &body);
    assert_eq!((st, j["error"].as_str()), (409, Some("replayed")));
    assert!(s.lake.root().join("server/replay.log").is_file());
}

#[test]
fn rule_headers_slower_than_the_timeout_close_the_connection_and_real_uploads_go_on() {
    use std::io::{Read, Write};
    let s = launch(
        tempfile::tempdir().unwrap(),
        Limits {
            header_timeout: Duration::from_secs(1),
            ..Limits::default()
        },
    );
    let mut slow: Vec<std::net::TcpStream> = (0..200)
        .map(|_| {
            let mut t = std::net::TcpStream::connect(s.addr).unwrap();
            t.write_all(b"POST /v1/uploads HTTP/1.1\r\nhost: x\r\nx-tessera-dev")
                .unwrap();
            t
        })
        .collect();
    // A real upload is served while 200 connections trickle their headers.
    let c = Client::new(&format!("http://{}", s.addr), "car-1", key(1));
    assert_eq!(c.upload_bytes("t.nmea", &trace(13)).status, 201);
    std::thread::sleep(Duration::from_millis(2500));
    let mut closed = 0;
    for t in &mut slow {
        t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 256];
        // Closed: EOF, a reset, or an error response followed by EOF.
        let done = match t.read(&mut b) {
            Ok(0) | Err(_) => true,
            Ok(_) => matches!(t.read(&mut b), Ok(0) | Err(_)),
        };
        closed += usize::from(done);
    }
    assert_eq!(closed, 200, "slow connections still open");
}

#[test]
fn rule_a_body_slower_than_the_minimum_rate_is_refused_408() {
    let s = launch(
        tempfile::tempdir().unwrap(),
        Limits {
            body_idle_timeout: Duration::from_secs(1),
            ..Limits::default()
        },
    );
    let body = trace(14);
    let t0 = Instant::now();
    let mut t = raw_tcp(&s, &signed_headers("car-1", &key(1), &body), body.len(), &body[..10]);
    let (st, text) = response(&mut t, 10);
    assert_eq!(st, 408, "{text}");
    assert!(text.contains("\"timeout\""), "{text}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(s.lake.sources().unwrap().is_empty());
}

#[test]
fn rule_headers_are_checked_before_any_body_byte_is_read() {
    let s = start(16 << 20);
    // 15 MiB announced, not a byte sent: the refusal comes anyway.
    let headers = vec![
        (H_DEVICE, "car-99".to_string()),
        (H_TIMESTAMP, tessera_net::now_ms().to_string()),
        (H_SIGNATURE, "00".repeat(64)),
    ];
    let mut t = raw_tcp(&s, &headers, 15 << 20, b"");
    let (st, text) = response(&mut t, 5);
    assert_eq!(st, 401, "{text}");
    assert!(text.contains("unknown_device"));
    // A malformed signature is refused from the header too.
    let mut h = signed_headers("car-1", &key(1), b"x");
    h[2].1 = "zz".into();
    let mut t = raw_tcp(&s, &h, 15 << 20, b"");
    assert_eq!(response(&mut t, 5).0, 401);
}

#[test]
fn rule_past_the_in_flight_budget_uploads_get_503_with_retry_after() {
    let s = launch(
        tempfile::tempdir().unwrap(),
        Limits {
            max_body: 64 << 10,
            max_in_flight: 64 << 10,
            ..Limits::default()
        },
    );
    let big = vec![b'$'; 60 << 10];
    // One slow upload holds most of the budget...
    let _held = raw_tcp(&s, &signed_headers("car-1", &key(1), &big), big.len(), &big[..100]);
    std::thread::sleep(Duration::from_millis(300));
    // ...so the next one is told to come back.
    let small = trace(16);
    let mut t = raw_tcp(&s, &signed_headers("car-2", &key(2), &small), small.len(), &small);
    let (st, text) = response(&mut t, 5);
    assert_eq!(st, 503, "{text}");
    assert!(text.to_ascii_lowercase().contains("retry-after: 1"), "{text}");
    assert!(text.contains("\"busy\""));
}

#[test]
fn rule_gzip_bodies_are_decoded_and_a_bomb_is_refused() {
    use std::io::Write;
    let s = start(1 << 20);
    let body = trace(17);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&body).unwrap();
    let gz = gz.finish().unwrap();
    let mut h = signed_headers("car-1", &key(1), &body);
    h.push(("content-encoding", "gzip".into()));
    let mut t = raw_tcp(&s, &h, gz.len(), &gz);
    let (st, text) = response(&mut t, 10);
    assert_eq!(st, 201, "{text}");
    assert!(
        text.contains(&blake3::hash(&body).to_hex().to_string()),
        "stored decoded: {text}"
    );
    // 1 GiB of zeros in about 1 MiB of gzip: refused once it decodes past the limit.
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        bomb.write_all(&zeros).unwrap();
    }
    let bomb = bomb.finish().unwrap();
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let mut h = signed_headers("car-1", &key(1), b"whatever");
    h.push(("content-encoding", "gzip".into()));
    let mut t = raw_tcp(&s, &h, bomb.len(), &bomb);
    let (st, text) = response(&mut t, 30);
    assert_eq!(st, 413, "{text}");
    assert!(text.contains("decodes to more than"), "{text}");
    assert_eq!(s.lake.sources().unwrap().len(), 1);
}

#[test]
fn rule_a_source_records_when_the_server_received_it() {
    let s = start(1 << 20);
    let before = tessera_net::now_ms();
    let c = Client::new(&format!("http://{}", s.addr), "car-1", key(1));
    let r = c.upload_bytes("t.nmea", &trace(18));
    let after = tessera_net::now_ms();
    assert_eq!(r.status, 201);
    let at = r.response["received_at"].as_str().unwrap();
    let ms = chrono::DateTime::parse_from_rfc3339(at).unwrap().timestamp_millis();
    assert!(before <= ms && ms <= after, "{at}");
    assert_eq!(s.lake.sources().unwrap()[0].received_at.as_deref(), Some(at));
}

#[test]
fn rule_leftovers_of_a_killed_server_are_removed_on_start() {
    let mut s = start(1 << 20);
    let c = Client::new(&format!("http://{}", s.addr), "car-1", key(1));
    assert_eq!(c.upload_bytes("t.nmea", &trace(19)).status, 201);
    let dir = s.dir.take().unwrap();
    drop(s);
    let root = dir.path().to_path_buf();
    let committed = lake_files(&root);
    let h = "ab".repeat(32);
    let leftovers = [
        root.join("fixes/.tmp-xyz"),
        root.join(format!("fixes/{h}.parquet")),
        root.join(format!("sources/{h}.nmea")),
    ];
    for p in &leftovers {
        std::fs::write(p, b"partial").unwrap();
    }
    std::fs::write(root.join("server/tmp/.upload-1"), b"partial").unwrap();
    // By default only what is an hour old goes (another writer may be committing these now):
    // the server's own spool is always emptied.
    let s = launch(dir, Limits::default());
    assert!(
        leftovers.iter().all(|p| p.exists()),
        "files younger than an hour are kept"
    );
    assert!(!root.join("server/tmp/.upload-1").exists());
    let mut s = s;
    let dir = s.dir.take().unwrap();
    drop(s);
    // With no minimum age (a lake nothing else writes to) all of them go, and nothing else.
    let s = launch(
        dir,
        Limits {
            leftover_age: Duration::ZERO,
            ..Limits::default()
        },
    );
    assert!(leftovers.iter().all(|p| !p.exists()));
    assert_eq!(s.lake.sources().unwrap().len(), 1, "the committed source stays");
    assert_eq!(lake_files(&root), committed, "every committed file, byte for byte");
}

/// Every file under the lake's source directories with its bytes, sorted by path.
fn lake_files(root: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out: Vec<(std::path::PathBuf, Vec<u8>)> = tessera::lake::SOURCE_DIRS
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d)).unwrap().flatten())
        .map(|e| (e.path(), std::fs::read(e.path()).unwrap()))
        .collect();
    out.sort();
    out
}

/// A simulated CAMM video of two minutes (GNSS + 10 Hz IMU), starting a minute ago.
fn video() -> Vec<u8> {
    use tessera::simulate::camera::{camm_mp4, imu, Motion};
    let t0 = tessera_net::now_ms() - 180_000;
    let m: Vec<Motion> = (0..120)
        .map(|i| Motion {
            t_ms: t0 + i * 1000,
            lat: 52.5,
            lon: 13.4 + i as f64 * 1.5e-4,
            alt: 30.0,
            speed: 10.0,
            course: 90.0,
            hdop: 0.8,
        })
        .collect();
    camm_mp4(&m, &imu(&m, 1, false))
}

#[test]
fn a_camera_video_over_the_body_limit_streams_to_disk_under_the_video_limit_with_its_imu() {
    let s = start(16 << 10);
    let body = video();
    assert!(body.len() > 16 << 10, "{}", body.len());
    let c1 = Client::new(&format!("http://{}", s.addr), "car-1", key(1));
    let r = c1.upload_bytes("cam/trip.mp4", &body);
    assert_eq!(r.status, 201, "{:?}", r.response);
    let hash = blake3::hash(&body).to_hex().to_string();
    assert_eq!(
        std::fs::read(s.lake.root().join(format!("sources/{hash}.mp4"))).unwrap(),
        body
    );
    let meta = s.lake.sources().unwrap().pop().unwrap();
    assert_eq!((meta.fixes, meta.imu, meta.name.as_str()), (120, 2380, "cam/trip.mp4"));
    assert_eq!(s.lake.read_imu(&hash).unwrap().len(), 2380);
    // The same bytes under a name that is not a video: the ordinary limit applies.
    assert_eq!(c1.upload_bytes("trip.bin", &body).status, 413);
    // A body named like a video that is not one, over the ordinary limit: refused.
    let junk = vec![b'x'; 40 << 10];
    let r = c1.upload_bytes("fake.mp4", &junk);
    assert_eq!(r.status, 413, "{:?}", r.response);
}

#[test]
fn rule_a_trace_over_the_spool_size_is_stored_whole_and_no_temp_file_stays() {
    let s = start(8 << 20);
    let big = tessera::simulate::simulate(&tessera::simulate::SimConfig {
        seed: 5,
        drivers: 1,
        epochs: 1,
        trips: 1,
        minutes: 200,
        ..Default::default()
    })
    .files[0]
        .bytes
        .clone();
    assert!(big.len() > tessera_net::server::SPOOL_BYTES, "{}", big.len());
    let small = trace(9);
    let c1 = Client::new(&format!("http://{}", s.addr), "car-1", key(1));
    for (name, body) in [("big.nmea", &big), ("small.nmea", &small)] {
        let r = c1.upload_bytes(name, body);
        assert_eq!(r.status, 201, "{name}: {:?}", r.response);
        let hash = blake3::hash(body).to_hex().to_string();
        assert_eq!(
            &std::fs::read(s.lake.root().join(format!("sources/{hash}.nmea"))).unwrap(),
            body
        );
    }
    let meta = s.lake.sources().unwrap();
    assert!(meta.iter().any(|m| m.fixes > 10_000), "{meta:?}");
    assert_eq!(std::fs::read_dir(s.lake.root().join("server/tmp")).unwrap().count(), 0);
}
