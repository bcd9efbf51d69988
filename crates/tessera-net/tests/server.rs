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
    _dir: tempfile::TempDir,
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
    let dir = tempfile::tempdir().unwrap();
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
    let state = AppState::new(
        lake.clone(),
        registry,
        Limits {
            max_body,
            max_skew_ms: 60_000,
        },
    );
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
        _dir: dir,
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
    let st = AppState::new(lake.clone(), reg, Limits::default());
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
