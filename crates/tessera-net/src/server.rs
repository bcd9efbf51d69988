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

/// Why an upload is refused: each kind names its stable `error` reason and HTTP status and
/// renders its own JSON response `{"error": reason, "message": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A required header is missing or malformed (400).
    #[error("{0}")]
    MissingHeader(String),
    /// The device is not in the registry or has no key (401).
    #[error("{0}")]
    UnknownDevice(String),
    /// The timestamp is older than the skew window (401).
    #[error("{0}")]
    StaleTimestamp(String),
    /// The timestamp is ahead of the skew window (401).
    #[error("{0}")]
    FutureTimestamp(String),
    /// The body is over the limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// The body could not be read (400).
    #[error("{0}")]
    BodyError(String),
    /// The signature does not match (401).
    #[error("signature does not match device key, timestamp and body")]
    BadSignature,
    /// The same signed request again (409).
    #[error("this signed request was already received")]
    Replayed,
    /// The body is not a raw trace (422).
    #[error("{0}")]
    NotATrace(String),
    /// The lake could not store it (500).
    #[error("{0}")]
    StorageError(String),
    /// Anything else (500).
    #[error("{0}")]
    Internal(String),
}

impl Refusal {
    /// The stable reason, as in the JSON `error` field and the metrics label.
    ///
    /// ```
    /// assert_eq!(tessera_net::server::Refusal::Replayed.reason(), "replayed");
    /// ```
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::MissingHeader(_) => "missing_header",
            Refusal::UnknownDevice(_) => "unknown_device",
            Refusal::StaleTimestamp(_) => "stale_timestamp",
            Refusal::FutureTimestamp(_) => "future_timestamp",
            Refusal::TooLarge(_) => "too_large",
            Refusal::BodyError(_) => "body_error",
            Refusal::BadSignature => "bad_signature",
            Refusal::Replayed => "replayed",
            Refusal::NotATrace(_) => "not_a_trace",
            Refusal::StorageError(_) => "storage_error",
            Refusal::Internal(_) => "internal",
        }
    }

    /// The HTTP status.
    ///
    /// ```
    /// assert_eq!(tessera_net::server::Refusal::Replayed.status().as_u16(), 409);
    /// ```
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::MissingHeader(_) | Refusal::BodyError(_) => StatusCode::BAD_REQUEST,
            Refusal::UnknownDevice(_)
            | Refusal::StaleTimestamp(_)
            | Refusal::FutureTimestamp(_)
            | Refusal::BadSignature => StatusCode::UNAUTHORIZED,
            Refusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Replayed => StatusCode::CONFLICT,
            Refusal::NotATrace(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Refusal::StorageError(_) | Refusal::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = json!({"error": self.reason(), "message": self.to_string()});
        (self.status(), Json(body)).into_response()
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn upload(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let result = accept(&st, &headers, body).await;
    st.metrics.observe(started);
    match result {
        Ok(r) => r,
        Err(refusal) => {
            *st.metrics
                .refused
                .lock()
                .expect("metrics lock")
                .entry(refusal.reason())
                .or_default() += 1;
            refusal.into_response()
        }
    }
}

/// Who signed the request, as the headers say.
struct Signed {
    device: String,
    pubkey: [u8; 32],
    ts: i64,
    sig: String,
}

/// Check the headers in order: device, its key, timestamp window, signature present.
fn authenticate(st: &AppState, headers: &HeaderMap, now: i64) -> Result<Signed, Refusal> {
    let device = header(headers, H_DEVICE)
        .map(str::to_string)
        .ok_or_else(|| Refusal::MissingHeader(format!("header {H_DEVICE} is required")))?;
    let Some(pubkey) = st.registry.pubkey(&device).copied() else {
        let why = if st.registry.wallet(&device).is_some() {
            "has no pubkey in the registry"
        } else {
            "is not in the registry"
        };
        return Err(Refusal::UnknownDevice(format!("device {device:?} {why}")));
    };
    let ts = header(headers, H_TIMESTAMP)
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(|| Refusal::MissingHeader(format!("header {H_TIMESTAMP} must be integer ms since 1970")))?;
    let skew = st.limits.max_skew_ms;
    if ts < now - skew {
        return Err(Refusal::StaleTimestamp(format!(
            "timestamp {ts} is {} ms old (limit {skew})",
            now - ts
        )));
    }
    if ts > now + skew {
        return Err(Refusal::FutureTimestamp(format!(
            "timestamp {ts} is {} ms ahead (limit {skew})",
            ts - now
        )));
    }
    let sig = header(headers, H_SIGNATURE)
        .map(str::to_string)
        .ok_or_else(|| Refusal::MissingHeader(format!("header {H_SIGNATURE} is required")))?;
    Ok(Signed {
        device,
        pubkey,
        ts,
        sig,
    })
}

/// The body, within the size limit.
async fn read_body(st: &AppState, headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, Refusal> {
    let max = st.limits.max_body;
    let declared = header(headers, "content-length").and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = declared.filter(|n| *n > max) {
        return Err(Refusal::TooLarge(format!("body of {n} bytes exceeds {max}")));
    }
    axum::body::to_bytes(body, max).await.map_err(|e| {
        let too_large = std::error::Error::source(&e).is_some_and(|s| s.to_string().contains("length limit"));
        if too_large || e.to_string().contains("length limit") {
            Refusal::TooLarge(format!("body exceeds {max} bytes"))
        } else {
            Refusal::BodyError(format!("could not read the body: {e}"))
        }
    })
}

/// Remember a signature for the skew window; a repeat is a replay.
fn check_replay(st: &AppState, s: &Signed, now: i64) -> Result<(), Refusal> {
    let mut seen = st.seen.lock().expect("seen lock");
    if seen.contains_key(&s.sig) {
        return Err(Refusal::Replayed);
    }
    let horizon = now - 2 * st.limits.max_skew_ms;
    if seen.len() > 100_000 {
        seen.retain(|_, t| *t >= horizon);
    }
    seen.insert(s.sig.clone(), s.ts);
    Ok(())
}

/// Authenticate, read, verify, check for a replay, then store and ingest.
async fn accept(st: &Arc<AppState>, headers: &HeaderMap, body: Body) -> Result<Response, Refusal> {
    let now = (st.clock)();
    let signed = authenticate(st, headers, now)?;
    let bytes = read_body(st, headers, body).await?;
    if !signing::verify(&signed.pubkey, &signed.device, signed.ts, &bytes, &signed.sig) {
        return Err(Refusal::BadSignature);
    }
    check_replay(st, &signed, now)?;
    let name = header(headers, H_FILENAME)
        .unwrap_or("upload")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>();
    // The lake also ingests Parquet fixes (simulations, exports), but a device must send what its
    // receiver recorded; and a Parquet reader is no thing to point at untrusted bodies.
    if tessera::ingest::Format::detect(&bytes) == tessera::ingest::Format::Parquet {
        return Err(Refusal::NotATrace(
            "a Parquet file is not a raw trace: devices upload NMEA or GPX as recorded".into(),
        ));
    }
    store(st, signed.device, name, bytes).await
}

/// Parse and ingest in a blocking task (one ingest per content at a time).
async fn store(
    st: &Arc<AppState>,
    device: String,
    name: String,
    bytes: axum::body::Bytes,
) -> Result<Response, Refusal> {
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
    .await
    .map_err(|e| Refusal::Internal(e.to_string()))?;
    let (outcome, n) = match result {
        Ok((Ok(outcome), n)) => (outcome, n),
        Ok((Err(e), _)) => return Err(Refusal::StorageError(e.to_string())),
        Err(lines) => {
            return Err(Refusal::NotATrace(format!(
                "no fix could be read: {} lines, {} rejected, {} ignored",
                lines.total, lines.rejected, lines.ignored
            )))
        }
    };
    let m = &outcome.meta;
    let body = json!({"source": m.hash, "duplicate": outcome.duplicate, "device": m.device, "fixes": m.fixes, "rejected": m.rejected, "rejected_by_reason": m.rejected_by_reason});
    if outcome.duplicate {
        st.metrics.duplicates.fetch_add(1, Ordering::Relaxed);
        Ok((StatusCode::OK, Json(body)).into_response())
    } else {
        st.metrics.accepted.fetch_add(1, Ordering::Relaxed);
        st.metrics.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok((StatusCode::CREATED, Json(body)).into_response())
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
