//! Device keys and upload signatures. A device signs
//! `"tessera-upload-v1\n{device}\n{timestamp_ms}\n{blake3(body) hex}"` with ed25519; the server
//! checks it against the public key in the registry.

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use std::path::Path;

/// Header carrying the device id.
pub const H_DEVICE: &str = "x-tessera-device";
/// Header carrying the timestamp (ms since 1970).
pub const H_TIMESTAMP: &str = "x-tessera-timestamp";
/// Header carrying the hex ed25519 signature.
pub const H_SIGNATURE: &str = "x-tessera-signature";
/// Header carrying the original file name (informational, not signed).
pub const H_FILENAME: &str = "x-tessera-filename";

/// The signed message.
///
/// ```
/// let m = tessera_net::signing::message("car-1", 5, &[0u8; 32]);
/// assert!(m.starts_with(b"tessera-upload-v1\ncar-1\n5\n0000"));
/// ```
pub fn message(device: &str, timestamp_ms: i64, body_blake3: &[u8; 32]) -> Vec<u8> {
    format!(
        "tessera-upload-v1\n{device}\n{timestamp_ms}\n{}",
        hex::encode(body_blake3)
    )
    .into_bytes()
}

/// Key errors.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// File problems.
    #[error("key file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// No randomness.
    #[error("cannot get random bytes: {0}")]
    Random(String),
}

/// A device's signing key.
pub struct DeviceKey(SigningKey);

impl DeviceKey {
    /// A new random key.
    pub fn generate() -> Result<DeviceKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(DeviceKey(SigningKey::from_bytes(&seed)))
    }

    /// A key from a 32-byte seed (tests, HSM exports).
    pub fn from_seed(seed: [u8; 32]) -> DeviceKey {
        DeviceKey(SigningKey::from_bytes(&seed))
    }

    /// Read a key file written by [`DeviceKey::save`].
    pub fn load(path: &Path) -> Result<DeviceKey, KeyError> {
        let err = |m: &str| KeyError::File {
            path: path.display().to_string(),
            message: m.to_string(),
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(&e.to_string()))?;
        let line = text
            .lines()
            .find(|l| l.starts_with("secret "))
            .ok_or_else(|| err("no `secret <64 hex>` line"))?;
        let seed: [u8; 32] = hex::decode(line.trim_start_matches("secret ").trim())
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| err("secret is not 64 hex digits"))?;
        Ok(DeviceKey::from_seed(seed))
    }

    /// Write the key (mode 0600 on Unix); refuses to overwrite an existing file.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let err = |m: String| KeyError::File {
            path: path.display().to_string(),
            message: m,
        };
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(|e| err(e.to_string()))?;
        let text = format!(
            "# tessera device key (ed25519). Keep it on the device; put the public key in the registry.\nsecret {}\npublic {}\n",
            hex::encode(self.0.to_bytes()),
            self.public_hex()
        );
        use std::io::Write;
        f.write_all(text.as_bytes()).map_err(|e| err(e.to_string()))?;
        f.sync_all().map_err(|e| err(e.to_string()))
    }

    /// Public key, 64 hex digits (the registry's `pubkey` column).
    pub fn public_hex(&self) -> String {
        hex::encode(self.0.verifying_key().to_bytes())
    }

    /// Sign an upload; returns the signature as 128 hex digits.
    ///
    /// ```
    /// use tessera_net::signing::{verify, DeviceKey};
    /// let k = DeviceKey::from_seed([7; 32]);
    /// let sig = k.sign_upload("car-1", 1000, b"$GPGGA...");
    /// let pk: [u8; 32] = hex::decode(k.public_hex()).unwrap().try_into().unwrap();
    /// assert!(verify(&pk, "car-1", 1000, b"$GPGGA...", &sig));
    /// assert!(!verify(&pk, "car-1", 1001, b"$GPGGA...", &sig));
    /// ```
    pub fn sign_upload(&self, device: &str, timestamp_ms: i64, body: &[u8]) -> String {
        let msg = message(device, timestamp_ms, blake3::hash(body).as_bytes());
        hex::encode(self.0.sign(&msg).to_bytes())
    }
}

/// Verify an upload signature (strict ed25519: no malleable signatures).
pub fn verify(pubkey: &[u8; 32], device: &str, timestamp_ms: i64, body: &[u8], signature_hex: &str) -> bool {
    let Ok(vk) = VerifyingKey::from_bytes(pubkey) else {
        return false;
    };
    let Some(sig) = hex::decode(signature_hex)
        .ok()
        .and_then(|v| <[u8; 64]>::try_from(v).ok())
    else {
        return false;
    };
    let sig = ed25519_dalek::Signature::from_bytes(&sig);
    let msg = message(device, timestamp_ms, blake3::hash(body).as_bytes());
    vk.verify_strict(&msg, &sig).is_ok() && vk.verify(&msg, &sig).is_ok()
}

/// The signature bytes of a hex signature header, in any letter case (`AB..` and `ab..` are the
/// same signature: the replay check keys on these bytes, never on the text), or `None` when it is
/// not 64 bytes of hex.
///
/// ```
/// let lower = "ab".repeat(64);
/// assert_eq!(tessera_net::signing::signature_bytes(&lower), tessera_net::signing::signature_bytes(&lower.to_uppercase()));
/// assert_eq!(tessera_net::signing::signature_bytes("abc"), None);
/// ```
pub fn signature_bytes(signature_hex: &str) -> Option<[u8; 64]> {
    hex::decode(signature_hex.trim()).ok()?.try_into().ok()
}

/// Verify an upload signature given the BLAKE3 of the body (computed while the body streamed in).
///
/// ```
/// use tessera_net::signing::{DeviceKey, signature_bytes, verify_hash};
/// let k = DeviceKey::from_seed([7; 32]);
/// let sig = signature_bytes(&k.sign_upload("car-1", 5, b"body")).unwrap();
/// let pk: [u8; 32] = hex::decode(k.public_hex()).unwrap().try_into().unwrap();
/// assert!(verify_hash(&pk, "car-1", 5, &blake3::hash(b"body"), &sig));
/// assert!(!verify_hash(&pk, "car-1", 6, &blake3::hash(b"body"), &sig));
/// ```
pub fn verify_hash(pubkey: &[u8; 32], device: &str, timestamp_ms: i64, body: &blake3::Hash, sig: &[u8; 64]) -> bool {
    let Ok(vk) = VerifyingKey::from_bytes(pubkey) else {
        return false;
    };
    let sig = ed25519_dalek::Signature::from_bytes(sig);
    let msg = message(device, timestamp_ms, body.as_bytes());
    vk.verify_strict(&msg, &sig).is_ok() && vk.verify(&msg, &sig).is_ok()
}
