//! `tessera upload`: sign and send trace files, retrying transient failures with backoff.

use crate::signing::{DeviceKey, H_DEVICE, H_FILENAME, H_SIGNATURE, H_TIMESTAMP};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// What happened to one file.
#[derive(Debug, Clone, Serialize)]
pub struct UploadResult {
    /// File path.
    pub file: String,
    /// Final HTTP status (0 when no answer was ever received).
    pub status: u16,
    /// Stored (201) or already there (200).
    pub ok: bool,
    /// Attempts made.
    pub attempts: u32,
    /// The server's JSON answer, or the transport error.
    pub response: serde_json::Value,
}

/// Upload client.
pub struct Client {
    agent: ureq::Agent,
    server: String,
    device: String,
    key: DeviceKey,
    /// Attempts per file (first try included).
    pub attempts: u32,
    /// First backoff; doubles each retry.
    pub backoff: Duration,
}

impl Client {
    /// A client for `server` (e.g. `http://127.0.0.1:8080`).
    pub fn new(server: &str, device: &str, key: DeviceKey) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Client {
            agent,
            server: server.trim_end_matches('/').to_string(),
            device: device.to_string(),
            key,
            attempts: 5,
            backoff: Duration::from_millis(200),
        }
    }

    /// Upload bytes as `name`. Transport errors, 5xx and 429 are retried, each attempt freshly
    /// timestamped and signed; other answers are final.
    pub fn upload_bytes(&self, name: &str, bytes: &[u8]) -> UploadResult {
        let mut attempts = 0;
        let mut wait = self.backoff;
        loop {
            attempts += 1;
            let ts = crate::now_ms();
            let sig = self.key.sign_upload(&self.device, ts, bytes);
            let r = self
                .agent
                .post(format!("{}/v1/uploads", self.server))
                .header(H_DEVICE, &self.device)
                .header(H_TIMESTAMP, ts.to_string())
                .header(H_SIGNATURE, &sig)
                .header(H_FILENAME, name)
                .header("content-type", "application/octet-stream")
                .send(bytes);
            let (status, response) = match r {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let text = resp.body_mut().read_to_string().unwrap_or_default();
                    (
                        status,
                        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
                    )
                }
                Err(e) => (0, serde_json::Value::String(e.to_string())),
            };
            let transient = status == 0 || status == 429 || status >= 500;
            if !transient || attempts >= self.attempts {
                return UploadResult {
                    file: name.to_string(),
                    status,
                    ok: status == 200 || status == 201,
                    attempts,
                    response,
                };
            }
            std::thread::sleep(wait);
            wait *= 2;
        }
    }

    /// Upload a file.
    pub fn upload_file(&self, path: &Path) -> UploadResult {
        match std::fs::read(path) {
            Ok(b) => self.upload_bytes(&path.file_name().unwrap_or_default().to_string_lossy(), &b),
            Err(e) => UploadResult {
                file: path.display().to_string(),
                status: 0,
                ok: false,
                attempts: 0,
                response: serde_json::Value::String(format!("{}: {e}", path.display())),
            },
        }
    }
}
