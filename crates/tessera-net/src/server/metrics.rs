//! Counters behind `/metrics` (Prometheus text exposition).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

const BUCKETS_MS: [f64; 11] = [1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0];

/// Counters behind `/metrics`.
#[derive(Default)]
pub struct Metrics {
    pub(super) accepted: AtomicU64,
    pub(super) duplicates: AtomicU64,
    pub(super) bytes: AtomicU64,
    /// Group commits (each made one or more uploads durable together).
    pub(super) commits: std::sync::Arc<AtomicU64>,
    pub(super) refused: Mutex<BTreeMap<&'static str, u64>>,
    latency_buckets: [AtomicU64; BUCKETS_MS.len() + 1],
    latency_sum_us: AtomicU64,
    latency_count: AtomicU64,
}

impl Metrics {
    pub(super) fn observe(&self, started: Instant) {
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
        s.push_str("# TYPE tessera_commit_batches_total counter\n");
        s.push_str(&format!(
            "tessera_commit_batches_total {}\n",
            self.commits.load(Ordering::Relaxed)
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
