//! The Solana distributor scheme: sha256 with domain separation.
//! leaf = sha256(0x00 ‖ sha256(pubkey32 ‖ amount u64 LE ‖ locked u64 LE)),
//! node = sha256(0x01 ‖ min(a, b) ‖ max(a, b)), an odd node is paired with itself.

use sha2::{Digest, Sha256};

/// A 32-byte hash.
pub type Hash = [u8; 32];

/// The leaf of one claim.
///
/// ```
/// let a = tessera::merkle::solana::leaf(&[1u8; 32], 5, 0);
/// assert_ne!(a, tessera::merkle::solana::leaf(&[1u8; 32], 6, 0));
/// ```
pub fn leaf(pubkey: &[u8; 32], amount: u64, locked: u64) -> Hash {
    let mut inner = Sha256::new();
    inner.update(pubkey);
    inner.update(amount.to_le_bytes());
    inner.update(locked.to_le_bytes());
    let inner: Hash = inner.finalize().into();
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(inner);
    h.finalize().into()
}

/// An internal node.
///
/// ```
/// use tessera::merkle::solana::node;
/// assert_eq!(node(&[1; 32], &[2; 32]), node(&[2; 32], &[1; 32]));
/// ```
pub fn node(a: &Hash, b: &Hash) -> Hash {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(x);
    h.update(y);
    h.finalize().into()
}

/// Root and per-leaf proofs (leaf order kept).
///
/// ```
/// use tessera::merkle::solana::{build, leaf, verify};
/// let leaves: Vec<_> = (0..5u8).map(|i| leaf(&[i; 32], u64::from(i), 0)).collect();
/// let (root, proofs) = build(&leaves);
/// assert!(leaves.iter().zip(&proofs).all(|(l, p)| verify(&root, l, p)));
/// ```
pub fn build(leaves: &[Hash]) -> (Hash, Vec<Vec<Hash>>) {
    if leaves.is_empty() {
        return ([0u8; 32], Vec::new());
    }
    let mut proofs = vec![Vec::new(); leaves.len()];
    // position of each original leaf in the current level
    let mut pos: Vec<usize> = (0..leaves.len()).collect();
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            let right = pair.get(1).unwrap_or(&pair[0]);
            next.push(node(&pair[0], right));
        }
        for (i, p) in pos.iter_mut().enumerate() {
            let sib = if *p % 2 == 0 {
                (*p + 1).min(level.len() - 1)
            } else {
                *p - 1
            };
            proofs[i].push(level[sib]);
            *p /= 2;
        }
        level = next;
    }
    (level[0], proofs)
}

/// Fold a proof with [`node`] and compare with the root.
///
/// ```
/// // see `build`
/// ```
pub fn verify(root: &Hash, leaf: &Hash, proof: &[Hash]) -> bool {
    proof.iter().fold(*leaf, |acc, p| node(&acc, p)) == *root
}

/// Decode a base58 Solana public key.
///
/// ```
/// assert!(tessera::merkle::solana::pubkey("11111111111111111111111111111111").is_some());
/// assert!(tessera::merkle::solana::pubkey("0xabc").is_none());
/// ```
pub fn pubkey(s: &str) -> Option<[u8; 32]> {
    let v = bs58::decode(s).into_vec().ok()?;
    let k: [u8; 32] = v.try_into().ok()?;
    (bs58::encode(k).into_string() == s).then_some(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_node_is_paired_with_itself() {
        let l: Vec<Hash> = (0..3u8).map(|i| leaf(&[i; 32], 1, 0)).collect();
        let (root, proofs) = build(&l);
        assert_eq!(root, node(&node(&l[0], &l[1]), &node(&l[2], &l[2])));
        assert_eq!(proofs[2], vec![l[2], node(&l[0], &l[1])]);
    }

    #[test]
    fn leaf_and_node_are_domain_separated() {
        let l = leaf(&[9; 32], 1, 0);
        assert_ne!(node(&l, &l), leaf(&[9; 32], 1, 0));
        // A leaf preimage can never be replayed as a node: first byte differs.
        let single = build(&[l]);
        assert_eq!(single.0, l);
    }
}
