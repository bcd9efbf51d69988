//! `tessera serve`: the upload endpoint. Devices POST raw trace bytes to `/v1/uploads` with
//! headers naming the device, a timestamp and an ed25519 signature over (device, timestamp,
//! BLAKE3 of the body). Refusals are JSON `{"error": reason, "message": ...}` with the right
//! status; accepted traces are stored content-addressed in the lake and ingested, durable before
//! the 201. `/health` and `/metrics` (Prometheus text) report on it.
//!
//! Under abuse: the device, its key, the timestamp window and the signature's form are checked
//! from the headers before any body byte is read; the body is then hashed as it arrives, in memory
//! up to [`SPOOL_BYTES`] and streamed to a temp file past that, within a total in-flight budget
//! that bounds both (each request reserves its declared size or the body limit; beyond it:
//! 503 with `Retry-After`); headers and bodies that arrive too slowly close the connection; a
//! signature is accepted once, by its bytes, across restarts ([`replay`]); uploads that arrive
//! together are committed together (`commit`). On start, what a killed writer left behind an
//! hour ago or more is removed ([`tessera::lake::Lake::remove_leftovers`], [`Limits::leftover_age`]).

mod body;
mod commit;
mod metrics;
mod refusal;
pub mod replay;

pub use body::SPOOL_BYTES;
pub use metrics::Metrics;
pub use refusal::Refusal;

use crate::signing::{self, H_DEVICE, H_FILENAME, H_SIGNATURE, H_TIMESTAMP};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera::lake::Lake;
use tessera::registry::Registry;

/// Server limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted body, bytes, on the wire and decoded (gzip).
    pub max_body: usize,
    /// Largest accepted camera video (MP4), bytes: a request sent as `Content-Type: video/…` or
    /// named `*.mp4`/`*.mov`. Videos stream to disk and are ingested by seeking to their
    /// telemetry, so they take only a small share of `max_in_flight`.
    pub max_video_body: usize,
    /// Largest accepted |now - timestamp|, ms.
    pub max_skew_ms: i64,
    /// Bytes of bodies being received or ingested at once, over all connections; past it new
    /// uploads get 503 with `Retry-After`.
    pub max_in_flight: usize,
    /// Longest time for a request's headers to arrive (slower connections are closed).
    pub header_timeout: Duration,
    /// Longest wait for the next chunk of a body.
    pub body_idle_timeout: Duration,
    /// Slowest accepted average body rate once `body_idle_timeout` has passed, bytes/s.
    pub min_body_rate: u64,
    /// At start, what killed writers left in the lake (temp files, data files without their
    /// source's metadata) is removed once unchanged this long ([`Lake::remove_leftovers`]):
    /// [`tessera::lake::STALE_AFTER`], an hour, so that a server started while another writer
    /// is committing to the lake — an ingest, a server being replaced — leaves its files in
    /// flight alone. Zero removes them all (only for a lake nothing else writes to).
    pub leftover_age: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 16 << 20,
            max_video_body: 4 << 30,
            max_skew_ms: 5 * 60 * 1000,
            max_in_flight: 256 << 20,
            header_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(10),
            min_body_rate: 1024,
            leftover_age: tessera::lake::STALE_AFTER,
        }
    }
}

/// Shared server state.
pub struct AppState {
    lake: Lake,
    registry: Registry,
    limits: Limits,
    metrics: Metrics,
    replay: Arc<replay::ReplayCache>,
    /// KiB of body budget.
    in_flight: Arc<tokio::sync::Semaphore>,
    commit: Mutex<std::sync::mpsc::Sender<commit::Job>>,
    tmp: std::path::PathBuf,
    clock: fn() -> i64,
}

impl AppState {
    /// State for a lake and registry: removes what killed writers left in the lake
    /// ([`Limits::leftover_age`]), loads the replay log, starts the commit thread.
    ///
    /// # Errors
    /// I/O errors of the lake's `server/` directory or of removing leftovers.
    pub fn new(lake: Lake, registry: Registry, limits: Limits) -> std::io::Result<Arc<AppState>> {
        let now = crate::now_ms();
        let dir = lake.root().join("server");
        let tmp = dir.join("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        lake.remove_leftovers(limits.leftover_age)
            .map_err(std::io::Error::other)?;
        let replay = Arc::new(replay::ReplayCache::open(
            &dir.join("replay.log"),
            now,
            2 * limits.max_skew_ms,
        )?);
        let kib = u32::try_from(limits.max_in_flight.div_ceil(1024).max(1)).unwrap_or(u32::MAX >> 3);
        let metrics = Metrics::default();
        Ok(Arc::new(AppState {
            commit: Mutex::new(commit::spawn(lake.clone(), replay.clone(), metrics.commits.clone())),
            lake,
            registry,
            limits,
            metrics,
            replay,
            in_flight: Arc::new(tokio::sync::Semaphore::new(kib as usize)),
            tmp,
            clock: crate::now_ms,
        }))
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

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn upload(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let now = (st.clock)();
    let checked = authenticate(&st, &headers, now).and_then(|s| Ok((s, reserve(&st, &headers)?)));
    let result = match checked {
        Ok((signed, permit)) => accept(&st, &headers, body, signed, now, permit).await,
        Err(refusal) => {
            body::discard(body).await;
            Err(refusal)
        }
    };
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

/// Who signed the request, as the headers say (not yet checked against the body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// Device id (in the registry, with a key).
    pub device: String,
    /// Its public key.
    pub pubkey: [u8; 32],
    /// The request timestamp, ms (within the skew window).
    pub ts: i64,
    /// The signature bytes.
    pub sig: [u8; 64],
}

fn authenticate(st: &AppState, headers: &HeaderMap, now: i64) -> Result<Signed, Refusal> {
    check_headers(&st.registry, &st.limits, headers, now)
}

/// Check an upload's headers in order — device, its key, timestamp window, signature present and
/// 64 bytes of hex — before anything of the body is read.
///
/// # Errors
/// The [`Refusal`] for the first check that fails.
///
/// ```
/// use tessera_net::server::{check_headers, Limits};
/// let reg = tessera::registry::Registry::parse(b"car-1,0x00000000000000000000000000000000000000a1\n", "r").unwrap();
/// let h = axum::http::HeaderMap::new();
/// assert_eq!(check_headers(&reg, &Limits::default(), &h, 0).unwrap_err().reason(), "missing_header");
/// ```
pub fn check_headers(registry: &Registry, limits: &Limits, headers: &HeaderMap, now: i64) -> Result<Signed, Refusal> {
    let device = header(headers, H_DEVICE)
        .map(str::to_string)
        .ok_or_else(|| Refusal::MissingHeader(format!("header {H_DEVICE} is required")))?;
    let Some(pubkey) = registry.pubkey(&device).copied() else {
        let why = if registry.wallet(&device).is_some() {
            "has no pubkey in the registry"
        } else {
            "is not in the registry"
        };
        return Err(Refusal::UnknownDevice(format!("device {device:?} {why}")));
    };
    let ts = header(headers, H_TIMESTAMP)
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(|| Refusal::MissingHeader(format!("header {H_TIMESTAMP} must be integer ms since 1970")))?;
    let skew = limits.max_skew_ms;
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
        .ok_or_else(|| Refusal::MissingHeader(format!("header {H_SIGNATURE} is required")))?;
    let sig = signing::signature_bytes(sig).ok_or(Refusal::BadSignature)?;
    Ok(Signed {
        device,
        pubkey,
        ts,
        sig,
    })
}

/// Whether a request announces a camera video (`Content-Type: video/…`, or a name ending in
/// `.mp4`/`.mov`).
fn is_video(headers: &HeaderMap) -> bool {
    let ct = header(headers, "content-type").is_some_and(|c| c.trim().to_ascii_lowercase().starts_with("video/"));
    let name = header(headers, H_FILENAME).unwrap_or("").to_ascii_lowercase();
    ct || name.ends_with(".mp4") || name.ends_with(".mov")
}

/// The body limit of a request: [`Limits::max_video_body`] for a video, else `max_body`.
fn body_limit(st: &AppState, headers: &HeaderMap) -> usize {
    if is_video(headers) {
        st.limits.max_video_body
    } else {
        st.limits.max_body
    }
}

/// Share of the in-flight budget a video takes (its body goes to disk, not memory).
const VIDEO_SHARE: usize = 16 << 20;

/// A share of the in-flight body budget for this request: its declared length, or the whole
/// body limit when the length is not declared or the body is compressed (a video: at most
/// [`VIDEO_SHARE`]).
fn reserve(st: &AppState, headers: &HeaderMap) -> Result<tokio::sync::OwnedSemaphorePermit, Refusal> {
    let max = body_limit(st, headers);
    let declared = header(headers, "content-length").and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = declared.filter(|n| *n > max) {
        return Err(Refusal::TooLarge(format!("body of {n} bytes exceeds {max}")));
    }
    let compressed = header(headers, "content-encoding").is_some_and(|e| !matches!(e.trim(), "" | "identity"));
    let bytes = match declared {
        Some(n) if !compressed => n,
        _ => max,
    };
    let bytes = if is_video(headers) {
        bytes.min(VIDEO_SHARE)
    } else {
        bytes
    };
    let kib = u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    st.in_flight.clone().try_acquire_many_owned(kib).map_err(|_| {
        Refusal::Busy(format!(
            "uploads in flight have reached the {} MiB budget: retry shortly",
            st.limits.max_in_flight >> 20
        ))
    })
}

/// Stream the body (headers already authenticated, budget reserved), verify, check for a replay,
/// then commit.
async fn accept(
    st: &Arc<AppState>,
    headers: &HeaderMap,
    body: Body,
    signed: Signed,
    now: i64,
    _permit: tokio::sync::OwnedSemaphorePermit,
) -> Result<Response, Refusal> {
    let max = body_limit(st, headers);
    let received = body::receive(body, header(headers, "content-encoding"), &st.limits, max, &st.tmp).await?;
    if !signing::verify_hash(&signed.pubkey, &signed.device, signed.ts, &received.hash, &signed.sig) {
        return Err(Refusal::BadSignature);
    }
    match st.replay.insert(&signed.sig, signed.ts, now) {
        Ok(true) => {}
        Ok(false) => return Err(Refusal::Replayed),
        Err(e) => return Err(Refusal::StorageError(format!("replay log: {e}"))),
    }
    let name = header(headers, H_FILENAME)
        .unwrap_or("upload")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>();
    let bytes = match received.body {
        body::Spooled::Memory(bytes) => bytes,
        body::Spooled::File(file) => match from_file(file, st.limits.max_body).await? {
            Spilled::Video(video) => return store(st, signed.device, name, video, now).await,
            Spilled::Other(bytes) => bytes,
        },
    };
    let is_mp4 = tessera::ingest::Format::detect(&bytes) == tessera::ingest::Format::Mp4;
    if !is_mp4 && bytes.len() > st.limits.max_body {
        return Err(Refusal::TooLarge(format!(
            "body of {} bytes is not an MP4 video and exceeds {} bytes",
            bytes.len(),
            st.limits.max_body
        )));
    }
    if is_mp4 {
        // A small camera video: ingested from a temp file like a large one.
        let tmp = st.tmp.clone();
        let file = tokio::task::spawn_blocking(move || -> std::io::Result<tempfile::TempPath> {
            let mut f = tempfile::Builder::new().prefix(".upload-").tempfile_in(&tmp)?;
            std::io::Write::write_all(&mut f, &bytes)?;
            Ok(f.into_temp_path())
        })
        .await
        .map_err(|e| Refusal::Internal(e.to_string()))?
        .map_err(|e| Refusal::StorageError(format!("writing the received video: {e}")))?;
        return store(st, signed.device, name, commit::Body::File(file), now).await;
    }
    // The lake also ingests Parquet fixes (simulations, exports), but a device must send what its
    // receiver recorded; and a Parquet reader is no thing to point at untrusted bodies.
    if tessera::ingest::Format::detect(&bytes) == tessera::ingest::Format::Parquet {
        return Err(Refusal::NotATrace(
            "a Parquet file is not a raw trace: devices upload NMEA or GPX as recorded".into(),
        ));
    }
    store(st, signed.device, name, commit::Body::Bytes(bytes), now).await
}

/// What a body that went to a temp file is.
enum Spilled {
    /// A camera video: stays on disk, ingested by seeking.
    Video(commit::Body),
    /// Anything else, read whole (its size is checked by the caller).
    Other(Vec<u8>),
}

/// Sort a body that went to a temp file: a camera video stays there; anything else is read back
/// unless it is over `max_body` (refused without reading it).
async fn from_file(file: tempfile::NamedTempFile, max_body: usize) -> Result<Spilled, Refusal> {
    let path = file.path().to_path_buf();
    let (head, len) = tokio::task::spawn_blocking(move || -> std::io::Result<([u8; 8], u64)> {
        let mut f = std::fs::File::open(&path)?;
        let mut h = [0u8; 8];
        let n = std::io::Read::read(&mut f, &mut h)?;
        h[n..].fill(0);
        Ok((h, f.metadata()?.len()))
    })
    .await
    .map_err(|e| Refusal::Internal(e.to_string()))?
    .map_err(|e| Refusal::StorageError(format!("reading the received body: {e}")))?;
    if tessera::ingest::Format::detect(&head) == tessera::ingest::Format::Mp4 {
        return Ok(Spilled::Video(commit::Body::File(file.into_temp_path())));
    }
    if len > max_body as u64 {
        return Err(Refusal::TooLarge(format!(
            "body of {len} bytes is not an MP4 video and exceeds {max_body} bytes"
        )));
    }
    let path = file.path().to_path_buf();
    let bytes = tokio::task::spawn_blocking(move || std::fs::read(path))
        .await
        .map_err(|e| Refusal::Internal(e.to_string()))?
        .map_err(|e| Refusal::StorageError(format!("reading the received body: {e}")))?;
    drop(file);
    Ok(Spilled::Other(bytes))
}

/// Hand the upload to the group commit and answer when it is durable.
async fn store(
    st: &Arc<AppState>,
    device: String,
    name: String,
    bytes: commit::Body,
    now: i64,
) -> Result<Response, Refusal> {
    let n = bytes.size();
    let (reply, rx) = tokio::sync::oneshot::channel();
    let job = commit::Job {
        device,
        name,
        bytes,
        received_at_ms: now,
        reply,
    };
    st.commit
        .lock()
        .expect("commit lock")
        .send(job)
        .map_err(|_| Refusal::Internal("the commit thread stopped".into()))?;
    let outcome = match rx
        .await
        .map_err(|_| Refusal::Internal("the commit thread stopped".into()))?
    {
        Ok(o) => o,
        Err(tessera::lake::Error::NotATrace { detail, .. }) => return Err(Refusal::NotATrace(detail)),
        Err(tessera::lake::Error::Invalid(m)) => return Err(Refusal::MissingHeader(m)),
        Err(e) => return Err(Refusal::StorageError(e.to_string())),
    };
    let m = &outcome.meta;
    let body = json!({"source": m.hash, "duplicate": outcome.duplicate, "device": m.device, "fixes": m.fixes, "rejected": m.rejected, "rejected_by_reason": m.rejected_by_reason, "received_at": m.received_at});
    if outcome.duplicate {
        st.metrics.duplicates.fetch_add(1, Ordering::Relaxed);
        Ok((StatusCode::OK, Json(body)).into_response())
    } else {
        st.metrics.accepted.fetch_add(1, Ordering::Relaxed);
        st.metrics.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok((StatusCode::CREATED, Json(body)).into_response())
    }
}

/// Serve until `shutdown` resolves: HTTP/1.1 connections whose headers must arrive within
/// `header_timeout` (hyper's header read timer) — a connection that trickles them is closed.
/// Connections still open at shutdown finish their request.
///
/// # Errors
/// None in practice: failed accepts (e.g. out of file descriptors) are retried after a pause.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Some(state.limits.header_timeout))
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((s, _)) => s,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let svc = hyper_util::service::TowerToHyperService::new(app.clone());
                let conn = graceful.watch(http.serve_connection(hyper_util::rt::TokioIo::new(stream), svc));
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await;
    Ok(())
}
