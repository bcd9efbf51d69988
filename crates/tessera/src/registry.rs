//! The device registry: a CSV `device_id,wallet` mapping devices to reward recipients. Several
//! devices may share a wallet. EVM wallets are normalized to lowercase `0x` + 40 hex.

use std::collections::BTreeMap;

/// Device id → recipient (and, for devices that upload signed traces, their ed25519 public key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    devices: BTreeMap<String, String>,
    keys: BTreeMap<String, [u8; 32]>,
}

/// A registry line that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("registry {source_name} line {line}: {message}")]
pub struct RegistryError {
    /// File name (or `<bytes>`).
    pub source_name: String,
    /// 1-based line.
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

/// Validate a device id: 1–64 characters of `A-Z a-z 0-9 . _ : -`.
///
/// ```
/// assert!(tessera::registry::valid_device_id("car-0042"));
/// assert!(!tessera::registry::valid_device_id("../etc"));
/// ```
pub fn valid_device_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        && !id.starts_with('.')
}

/// Normalize a wallet address: an EVM address (`0x` + 40 hex, lowercased) or a base58 Solana
/// public key (kept as is); `None` for anything else.
///
/// ```
/// use tessera::registry::normalize_wallet;
/// assert_eq!(normalize_wallet("0xABCDEF0123456789abcdef0123456789ABCDEF01").unwrap(), "0xabcdef0123456789abcdef0123456789abcdef01");
/// assert!(normalize_wallet("0x1234").is_none());
/// assert!(normalize_wallet("4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T").is_some());
/// ```
pub fn normalize_wallet(w: &str) -> Option<String> {
    if let Some(hex) = w.strip_prefix("0x").or_else(|| w.strip_prefix("0X")) {
        return (hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| format!("0x{}", hex.to_ascii_lowercase()));
    }
    crate::merkle::solana::pubkey(w).map(|_| w.to_string())
}

impl Registry {
    /// Parse registry CSV: `device_id,wallet[,pubkey]` where `pubkey` is the device's ed25519 public
    /// key as 64 hex digits (needed only for signed uploads). A header line is allowed; `#`
    /// lines are comments.
    ///
    /// ```
    /// let r = tessera::registry::Registry::parse(b"device_id,wallet\ncar-1,0x00000000000000000000000000000000000000a1\n", "reg.csv").unwrap();
    /// assert_eq!(r.wallet("car-1"), Some("0x00000000000000000000000000000000000000a1"));
    /// assert_eq!(r.wallet("car-2"), None);
    /// ```
    ///
    /// # Errors
    /// [`RegistryError`] naming the source, line and field of the first bad row.
    pub fn parse(bytes: &[u8], source_name: &str) -> Result<Registry, RegistryError> {
        let err = |line: u64, message: String| RegistryError {
            source_name: source_name.to_string(),
            line,
            message,
        };
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .flexible(true)
            .from_reader(bytes);
        let mut devices = BTreeMap::new();
        let mut keys = BTreeMap::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| err(e.position().map_or(0, |p| p.line()), e.to_string()))?;
            let line = rec.position().map_or(0, |p| p.line());
            if rec.len() >= 2 && rec[0].eq_ignore_ascii_case("device_id") {
                continue;
            }
            if rec.len() != 2 && rec.len() != 3 {
                return Err(err(
                    line,
                    format!("expected device_id,wallet[,pubkey], found {} fields", rec.len()),
                ));
            }
            if rec.len() == 3 && !rec[2].is_empty() {
                let key: Option<[u8; 32]> = hex::decode(&rec[2]).ok().and_then(|v| v.try_into().ok());
                let key = key.ok_or_else(|| {
                    err(
                        line,
                        format!("pubkey {:?} is not 64 hex digits (an ed25519 public key)", &rec[2]),
                    )
                })?;
                keys.insert(rec[0].to_string(), key);
            }
            if !valid_device_id(&rec[0]) {
                return Err(err(
                    line,
                    format!("device id {:?} is not 1-64 characters of A-Z a-z 0-9 . _ : -", &rec[0]),
                ));
            }
            let wallet = normalize_wallet(&rec[1]).ok_or_else(|| {
                err(
                    line,
                    format!(
                        "wallet {:?} is neither an EVM address (0x + 40 hex digits) nor a base58 Solana public key",
                        &rec[1]
                    ),
                )
            })?;
            if devices.insert(rec[0].to_string(), wallet).is_some() {
                return Err(err(line, format!("device {:?} listed twice", &rec[0])));
            }
        }
        Ok(Registry { devices, keys })
    }

    /// The ed25519 public key a device signs uploads with, if registered.
    ///
    /// ```
    /// let r = tessera::registry::Registry::parse(format!("car-1,0x00000000000000000000000000000000000000a1,{}\n", "ab".repeat(32)).as_bytes(), "r").unwrap();
    /// assert_eq!(r.pubkey("car-1"), Some(&[0xab; 32]));
    /// ```
    pub fn pubkey(&self, device: &str) -> Option<&[u8; 32]> {
        self.keys.get(device)
    }

    /// The recipient of a device.
    ///
    /// ```
    /// let r = tessera::registry::Registry::parse(b"device_id,wallet\ncar-1,0x73b691f6d5ec2a1206f164f7b8104d301e1147b7\n", "r.csv").unwrap();
    /// assert_eq!(r.wallet("car-1"), Some("0x73b691f6d5ec2a1206f164f7b8104d301e1147b7"));
    /// assert_eq!(r.wallet("car-2"), None);
    /// ```
    pub fn wallet(&self, device: &str) -> Option<&str> {
        self.devices.get(device).map(String::as_str)
    }

    /// Number of devices.
    ///
    /// ```
    /// let r = tessera::registry::Registry::parse(b"device_id,wallet\ncar-1,0x73b691f6d5ec2a1206f164f7b8104d301e1147b7\ncar-2,0x73b691f6d5ec2a1206f164f7b8104d301e1147b7\n", "r.csv").unwrap();
    /// assert_eq!(r.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether the registry is empty.
    ///
    /// ```
    /// assert!(tessera::registry::Registry::parse(b"device_id,wallet\n", "r.csv").unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// The registry as canonical CSV (sorted by device).
    ///
    /// ```
    /// let r = tessera::registry::Registry::parse(b"b,0x00000000000000000000000000000000000000bB\na,0x00000000000000000000000000000000000000aa\n", "r").unwrap();
    /// assert!(r.to_csv().starts_with("device_id,wallet\na,"));
    /// ```
    pub fn to_csv(&self) -> String {
        let with_keys = !self.keys.is_empty();
        let mut s = String::from(if with_keys {
            "device_id,wallet,pubkey\n"
        } else {
            "device_id,wallet\n"
        });
        for (d, w) in &self.devices {
            s.push_str(d);
            s.push(',');
            s.push_str(w);
            if with_keys {
                s.push(',');
                s.push_str(&self.keys.get(d).map(hex::encode).unwrap_or_default());
            }
            s.push('\n');
        }
        s
    }

    /// Devices and their wallets, sorted by device.
    ///
    /// ```
    /// let r = tessera::registry::Registry::parse(b"device_id,wallet\ncar-2,0x73b691f6d5ec2a1206f164f7b8104d301e1147b7\ncar-1,0x73b691f6d5ec2a1206f164f7b8104d301e1147b7\n", "r.csv").unwrap();
    /// let devices: Vec<&str> = r.devices().map(|(d, _)| d).collect();
    /// assert_eq!(devices, ["car-1", "car-2"]);
    /// ```
    pub fn devices(&self) -> impl Iterator<Item = (&str, &str)> {
        self.devices.iter().map(|(d, w)| (d.as_str(), w.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_errors_name_the_line() {
        let e = Registry::parse(
            b"device_id,wallet\ncar-1,0x00000000000000000000000000000000000000a1\ncar-2,nope\n",
            "r.csv",
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.to_string().contains("r.csv line 3"), "{e}");
    }

    #[test]
    fn registry_duplicate_device_is_refused() {
        let e = Registry::parse(
            b"a,0x00000000000000000000000000000000000000a1\na,0x00000000000000000000000000000000000000a2\n",
            "r",
        )
        .unwrap_err();
        assert!(e.message.contains("twice"));
    }

    #[test]
    fn registry_pubkey_column_is_optional_and_validated() {
        let k = "0f".repeat(32);
        let r = Registry::parse(format!("device_id,wallet,pubkey\na,0x00000000000000000000000000000000000000a1,{k}\nb,0x00000000000000000000000000000000000000a2,\n").as_bytes(), "r").unwrap();
        assert_eq!(r.pubkey("a"), Some(&[0x0f; 32]));
        assert_eq!(r.pubkey("b"), None);
        assert_eq!(Registry::parse(r.to_csv().as_bytes(), "again").unwrap(), r);
        let e = Registry::parse(b"a,0x00000000000000000000000000000000000000a1,xyz\n", "r").unwrap_err();
        assert!(e.message.contains("ed25519"));
    }

    #[test]
    fn registry_devices_may_share_a_wallet() {
        let r = Registry::parse(
            b"a,0x00000000000000000000000000000000000000a1\nb,0x00000000000000000000000000000000000000A1\n",
            "r",
        )
        .unwrap();
        assert_eq!(r.wallet("a"), r.wallet("b"));
    }
}
