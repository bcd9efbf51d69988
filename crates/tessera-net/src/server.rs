//! `tessera serve`: the upload endpoint. Devices POST raw trace bytes to `/v1/uploads` with
//! headers naming the device, a timestamp and an ed25519 signature over (device, timestamp,
//! BLAKE3 of the body). Refusals are JSON `{"error": reason, "message": ...}` with the right
//! status; accepted traces are stored content-addressed in the lake (fsync + rename before the
//! 201) and ingested. `/health` and `/metrics` (Prometheus text) report on it.

use crate::signing::{self, H_DEVICE, H_FILENAME, H_SIGNATURE, H_TIMESTAMP};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tessera::lake::Lake;
use tessera::registry::Registry;

/// Server limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted body, bytes.
    pub max_body: usize,
    /// Largest accepted |now - timestamp|, ms.
    pub max_skew_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 16 << 20,
            max_skew_ms: 5 * 60 * 1000,
        }
    }
}

const BUCKETS_MS: [f64; 11] = [1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0];

/// Counters behind `/metrics`.
#[derive(Default)]
pub struct Metrics {
    accepted: AtomicU64,
    duplicates: AtomicU64,
    bytes: AtomicU64,
    refused: Mutex<BTreeMap<&'static str, u64>>,
    latency_buckets: [AtomicU64; BUCKETS_MS.len() + 1],
    latency_sum_us: AtomicU64,
    latency_count: AtomicU64,
}

impl Metrics {
    fn observe(&self, started: Instant) {
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let i = BUCKETS_MS.iter().position(|b| ms <= *b).unwrap_or(BUCKETS_MS.len());
        self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add((ms * 1000.0) as u64, Ordering::Relaxed);
        self.latency_count.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        s.push_str("# TYPE tessera_uploads_accepted_total counter\n");
        s.push_str(&format!(
            "tessera_uploads_accepted_total {}\n",
            self.accepted.load(Ordering::Relaxed)
        ));
        s.push_str("# TYPE tessera_uploads_duplicate_total counter\n");
        s.push_str(&format!(
            "tessera_uploads_duplicate_total {}\n",
            self.duplicates.load(Ordering::Relaxed)
        ));
        s.push_str("# TYPE tessera_upload_bytes_total counter\n");
        s.push_str(&format!(
            "tessera_upload_bytes_total {}\n",
            self.bytes.load(Ordering::Relaxed)
        ));
        s.push_str("# TYPE tessera_uploads_refused_total counter\n");
        for (reason, n) in self.refused.lock().expect("metrics lock").iter() {
            s.push_str(&format!("tessera_uploads_refused_total{{reason=\"{reason}\"}} {n}\n"));
        }
        s.push_str("# TYPE tessera_upload_latency_seconds histogram\n");
        let mut cum = 0;
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            cum += self.latency_buckets[i].load(Ordering::Relaxed);
            s.push_str(&format!(
                "tessera_upload_latency_seconds_bucket{{le=\"{}\"}} {cum}\n",
                b / 1000.0
            ));
        }
        cum += self.latency_buckets[BUCKETS_MS.len()].load(Ordering::Relaxed);
        s.push_str(&format!("tessera_upload_latency_seconds_bucket{{le=\"+Inf\"}} {cum}\n"));
        s.push_str(&format!(
            "tessera_upload_latency_seconds_sum {}\n",
            self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        ));
        s.push_str(&format!(
            "tessera_upload_latency_seconds_count {}\n",
            self.latency_count.load(Ordering::Relaxed)
        ));
        s
    }
}

/// Shared server state.
pub struct AppState {
    lake: Lake,
    registry: Registry,
    limits: Limits,
    metrics: Metrics,
    /// Signatures seen within the skew window (replay protection): signature → timestamp.
    seen: Mutex<HashMap<String, i64>>,
    /// Ingest of the same content is serialized (64 shards by hash).
    shards: Vec<Mutex<()>>,
    clock: fn() -> i64,
}

impl AppState {
    /// State for a lake and registry.
    pub fn new(lake: Lake, registry: Registry, limits: Limits) -> Arc<AppState> {
        Arc::new(AppState {
            lake,
            registry,
            limits,
            metrics: Metrics::default(),
            seen: Mutex::new(HashMap::new()),
            shards: (0..64).map(|_| Mutex::new(())).collect(),
            clock: crate::now_ms,
        })
    }
}

/// The routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/uploads", post(upload))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn health(State(st): State<Arc<AppState>>) -> Response {
    let ok = st.lake.root().join("sources").is_dir();
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({"status": if ok { "ok" } else { "lake unavailable" }, "devices": st.registry.len()})),
    )
        .into_response()
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    ([("content-type", "text/plain; version=0.0.4")], st.metrics.render()).into_response()
}

fn refuse(st: &AppState, started: Instant, code: StatusCode, reason: &'static str, message: String) -> Response {
    *st.metrics
        .refused
        .lock()
        .expect("metrics lock")
        .entry(reason)
        .or_default() += 1;
    st.metrics.observe(started);
    (code, Json(json!({"error": reason, "message": message}))).into_response()
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn upload(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let Some(device) = header(&headers, H_DEVICE).map(str::to_string) else {
        return refuse(
            &st,
            started,
            StatusCode::BAD_REQUEST,
            "missing_header",
            format!("header {H_DEVICE} is required"),
        );
    };
    let Some(pubkey) = st.registry.pubkey(&device).copied() else {
        let why = if st.registry.wallet(&device).is_some() {
            "has no pubkey in the registry"
        } else {
            "is not in the registry"
        };
        return refuse(
            &st,
            started,
            StatusCode::UNAUTHORIZED,
            "unknown_device",
            format!("device {device:?} {why}"),
        );
    };
    let Some(ts) = header(&headers, H_TIMESTAMP).and_then(|t| t.parse::<i64>().ok()) else {
        return refuse(
            &st,
            started,
            StatusCode::BAD_REQUEST,
            "missing_header",
            format!("header {H_TIMESTAMP} must be integer ms since 1970"),
        );
    };
    let now = (st.clock)();
    if ts < now - st.limits.max_skew_ms {
        return refuse(
            &st,
            started,
            StatusCode::UNAUTHORIZED,
            "stale_timestamp",
            format!(
                "timestamp {ts} is {} ms old (limit {})",
                now - ts,
                st.limits.max_skew_ms
            ),
        );
    }
    if ts > now + st.limits.max_skew_ms {
        return refuse(
            &st,
            started,
            StatusCode::UNAUTHORIZED,
            "future_timestamp",
            format!(
                "timestamp {ts} is {} ms ahead (limit {})",
                ts - now,
                st.limits.max_skew_ms
            ),
        );
    }
    let Some(sig) = header(&headers, H_SIGNATURE).map(str::to_string) else {
        return refuse(
            &st,
            started,
            StatusCode::BAD_REQUEST,
            "missing_header",
            format!("header {H_SIGNATURE} is required"),
        );
    };
    if let Some(n) = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if n > st.limits.max_body {
            return refuse(
                &st,
                started,
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("body of {n} bytes exceeds {}", st.limits.max_body),
            );
        }
    }
    let bytes = match axum::body::to_bytes(body, st.limits.max_body).await {
        Ok(b) => b,
        Err(e) => {
            let too_large = std::error::Error::source(&e).is_some_and(|s| s.to_string().contains("length limit"));
            return if too_large || e.to_string().contains("length limit") {
                refuse(
                    &st,
                    started,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("body exceeds {} bytes", st.limits.max_body),
                )
            } else {
                refuse(
                    &st,
                    started,
                    StatusCode::BAD_REQUEST,
                    "body_error",
                    format!("could not read the body: {e}"),
                )
            };
        }
    };
    if !signing::verify(&pubkey, &device, ts, &bytes, &sig) {
        return refuse(
            &st,
            started,
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            "signature does not match device key, timestamp and body".into(),
        );
    }
    {
        let mut seen = st.seen.lock().expect("seen lock");
        if seen.contains_key(&sig) {
            drop(seen);
            return refuse(
                &st,
                started,
                StatusCode::CONFLICT,
                "replayed",
                "this signed request was already received".into(),
            );
        }
        let horizon = now - 2 * st.limits.max_skew_ms;
        if seen.len() > 100_000 {
            seen.retain(|_, t| *t >= horizon);
        }
        seen.insert(sig, ts);
    }
    let name = header(&headers, H_FILENAME)
        .unwrap_or("upload")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>();
    // The lake also ingests Parquet fixes (simulations, exports), but a device must send what its
    // receiver recorded; and a Parquet reader is no thing to point at untrusted bodies.
    if tessera::ingest::Format::detect(&bytes) == tessera::ingest::Format::Parquet {
        return refuse(
            &st,
            started,
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_a_trace",
            "a Parquet file is not a raw trace: devices upload NMEA or GPX as recorded".into(),
        );
    }
    let st2 = st.clone();
    let result = tokio::task::spawn_blocking(move || {
        let parsed = tessera::ingest::parse(&bytes);
        if parsed.fixes.is_empty() {
            return Err(parsed.lines);
        }
        let hash = blake3::hash(&bytes);
        let _guard = st2.shards[hash.as_bytes()[0] as usize % st2.shards.len()]
            .lock()
            .expect("shard lock");
        Ok((st2.lake.ingest(&device, &name, &bytes), bytes.len()))
    })
    .await;
    match result {
        Ok(Ok((Ok(outcome), n))) => {
            let m = &outcome.meta;
            let body = json!({"source": m.hash, "duplicate": outcome.duplicate, "device": m.device, "fixes": m.fixes, "rejected": m.rejected, "rejected_by_reason": m.rejected_by_reason});
            st.metrics.observe(started);
            if outcome.duplicate {
                st.metrics.duplicates.fetch_add(1, Ordering::Relaxed);
                (StatusCode::OK, Json(body)).into_response()
            } else {
                st.metrics.accepted.fetch_add(1, Ordering::Relaxed);
                st.metrics.bytes.fetch_add(n as u64, Ordering::Relaxed);
                (StatusCode::CREATED, Json(body)).into_response()
            }
        }
        Ok(Ok((Err(e), _))) => refuse(
            &st,
            started,
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage_error",
            e.to_string(),
        ),
        Ok(Err(lines)) => refuse(
            &st,
            started,
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_a_trace",
            format!(
                "no fix could be read: {} lines, {} rejected, {} ignored",
                lines.total, lines.rejected, lines.ignored
            ),
        ),
        Err(e) => refuse(
            &st,
            started,
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            e.to_string(),
        ),
    }
}

/// Serve until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
