//! Merkle distribution of an epoch's rewards, so every recipient can claim on chain with a proof.
//! The scheme is chosen in the policy (`[rewards] merkle = ...`): [`Scheme::EvmStandardV1`]
//! (OpenZeppelin StandardMerkleTree over `(address, uint256)`) or [`Scheme::SolanaSha256V1`].

pub mod evm;
pub mod solana;

use serde::{Deserialize, Serialize};

/// A merkle scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Scheme {
    /// OpenZeppelin StandardMerkleTree "standard-v1", leaves `["address","uint256"]`.
    #[default]
    #[serde(rename = "evm-standard-v1")]
    EvmStandardV1,
    /// sha256 with 0x00/0x01 domain separation over (pubkey, amount u64 LE, locked u64 LE).
    #[serde(rename = "solana-sha256-v1")]
    SolanaSha256V1,
}

impl Scheme {
    /// Stable name.
    ///
    /// ```
    /// assert_eq!(tessera::merkle::Scheme::EvmStandardV1.as_str(), "evm-standard-v1");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            Scheme::EvmStandardV1 => "evm-standard-v1",
            Scheme::SolanaSha256V1 => "solana-sha256-v1",
        }
    }
}

/// One recipient's claim (what `tessera proof` prints and a claimant submits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// Wallet.
    pub recipient: String,
    /// Amount, base units (decimal string).
    pub amount: String,
    /// Leaf hash, `0x` hex.
    pub leaf: String,
    /// Proof, leaf to root, `0x` hex.
    pub proof: Vec<String>,
}

/// A distribution: the root, one claim per recipient (input order), and the tree dump.
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    /// Scheme.
    pub scheme: Scheme,
    /// Root, `0x` hex (`None` when nothing is allocated).
    pub root: Option<String>,
    /// Claims in input order.
    pub claims: Vec<Claim>,
    /// `merkle.json` content.
    pub dump: serde_json::Value,
}

/// Why a distribution cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MerkleError {
    /// A wallet is not an address of the scheme.
    #[error("recipient {recipient:?} is not a valid {scheme} wallet ({expected})")]
    BadWallet {
        /// The wallet.
        recipient: String,
        /// The scheme.
        scheme: &'static str,
        /// What it should look like.
        expected: &'static str,
    },
    /// An amount does not fit the scheme's integer.
    #[error("amount {amount} for {recipient} does not fit in u64, the amount type of {scheme}")]
    AmountTooLarge {
        /// The wallet.
        recipient: String,
        /// The amount.
        amount: u128,
        /// The scheme.
        scheme: &'static str,
    },
}

/// Build the distribution of `(recipient, amount)` pairs.
///
/// ```
/// use tessera::merkle::{build, Scheme};
/// let d = build(Scheme::EvmStandardV1, &[("0x1111111111111111111111111111111111111111".into(), 5_000_000_000_000_000_000), ("0x2222222222222222222222222222222222222222".into(), 2_500_000_000_000_000_000)]).unwrap();
/// assert_eq!(d.root.unwrap(), "0xd4dee0beab2d53f2cc83e567171bd2820e49898130a22622b10ead383e90bd77");
/// ```
///
/// # Errors
/// [`MerkleError`] when a wallet is not an address of the scheme or an amount does not fit it.
pub fn build(scheme: Scheme, shares: &[(String, u128)]) -> Result<Distribution, MerkleError> {
    match scheme {
        Scheme::EvmStandardV1 => {
            let mut values = Vec::with_capacity(shares.len());
            for (r, a) in shares {
                let addr = evm::AbiValue::address(r).ok_or_else(|| MerkleError::BadWallet {
                    recipient: r.clone(),
                    scheme: scheme.as_str(),
                    expected: "0x + 40 hex digits",
                })?;
                values.push(vec![addr, evm::AbiValue::uint(*a)]);
            }
            let t = evm::StandardTree::of(values, true);
            let claims = shares
                .iter()
                .enumerate()
                .map(|(i, (r, a))| Claim {
                    recipient: r.clone(),
                    amount: a.to_string(),
                    leaf: evm::hex0x(&t.leaf(i)),
                    proof: t.proof(i).iter().map(evm::hex0x).collect(),
                })
                .collect();
            let dump = if shares.is_empty() {
                serde_json::json!({"format": "standard-v1", "leafEncoding": ["address", "uint256"], "tree": [], "values": []})
            } else {
                t.dump_json()
            };
            Ok(Distribution {
                scheme,
                root: t.root().map(|h| evm::hex0x(&h)),
                claims,
                dump,
            })
        }
        Scheme::SolanaSha256V1 => {
            let mut leaves = Vec::with_capacity(shares.len());
            for (r, a) in shares {
                let pk = solana::pubkey(r).ok_or_else(|| MerkleError::BadWallet {
                    recipient: r.clone(),
                    scheme: scheme.as_str(),
                    expected: "base58 32-byte public key",
                })?;
                let amount = u64::try_from(*a).map_err(|_| MerkleError::AmountTooLarge {
                    recipient: r.clone(),
                    amount: *a,
                    scheme: scheme.as_str(),
                })?;
                leaves.push(solana::leaf(&pk, amount, 0));
            }
            let (root, proofs) = solana::build(&leaves);
            let claims: Vec<Claim> = shares
                .iter()
                .zip(leaves.iter().zip(&proofs))
                .map(|((r, a), (l, p))| Claim {
                    recipient: r.clone(),
                    amount: a.to_string(),
                    leaf: evm::hex0x(l),
                    proof: p.iter().map(evm::hex0x).collect(),
                })
                .collect();
            let root = (!shares.is_empty()).then(|| evm::hex0x(&root));
            let dump = serde_json::json!({
                "format": "tessera-solana-sha256-v1",
                "leaf": "sha256(0x00 || sha256(pubkey32 || amount_u64_le || locked_u64_le))",
                "node": "sha256(0x01 || min(a,b) || max(a,b)); odd node paired with itself",
                "root": root,
                "claims": claims,
            });
            Ok(Distribution {
                scheme,
                root,
                claims,
                dump,
            })
        }
    }
}

/// Check a claim against a root under a scheme name (as written in the manifest).
///
/// ```
/// use tessera::merkle::{build, verify_claim, Scheme};
/// let d = build(Scheme::EvmStandardV1, &[("0x1111111111111111111111111111111111111111".into(), 5)]).unwrap();
/// assert!(verify_claim("evm-standard-v1", d.root.as_ref().unwrap(), &d.claims[0]));
/// ```
pub fn verify_claim(scheme: &str, root: &str, c: &Claim) -> bool {
    let h = |s: &str| -> Option<[u8; 32]> { hex::decode(s.strip_prefix("0x")?).ok()?.try_into().ok() };
    let (Some(root), Some(proof)) = (h(root), c.proof.iter().map(|p| h(p)).collect::<Option<Vec<_>>>()) else {
        return false;
    };
    let Ok(amount) = c.amount.parse::<u128>() else {
        return false;
    };
    match scheme {
        "evm-standard-v1" => {
            let Some(addr) = evm::AbiValue::address(&c.recipient) else {
                return false;
            };
            let leaf = evm::standard_leaf(&[addr, evm::AbiValue::uint(amount)]);
            evm::hex0x(&leaf) == c.leaf && evm::verify(&root, &leaf, &proof)
        }
        "solana-sha256-v1" => {
            let (Some(pk), Ok(a)) = (solana::pubkey(&c.recipient), u64::try_from(amount)) else {
                return false;
            };
            let leaf = solana::leaf(&pk, a, 0);
            evm::hex0x(&leaf) == c.leaf && solana::verify(&root, &leaf, &proof)
        }
        _ => false,
    }
}
