//! OpenZeppelin `StandardMerkleTree` ("standard-v1"), as EVM claim contracts verify it with
//! `MerkleProof.verify`: leaf = keccak256(keccak256(abi.encode(values...))), internal node =
//! keccak256 of the sorted pair, leaves sorted by hash, the tree stored as an array with the
//! leaves at the end in reverse order. The JSON dump is the library's own format, so
//! `StandardMerkleTree.load()` in JavaScript accepts it.

use sha3::{Digest, Keccak256};

/// A 32-byte hash.
pub type Hash = [u8; 32];

/// keccak256.
///
/// ```
/// let h = tessera::merkle::evm::keccak(b"");
/// assert_eq!(hex::encode(h), "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
/// ```
pub fn keccak(data: &[u8]) -> Hash {
    Keccak256::digest(data).into()
}

/// A value of one of the ABI types tessera encodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbiValue {
    /// `address`.
    Address([u8; 20]),
    /// `uint256`, big-endian.
    Uint256([u8; 32]),
    /// `string`.
    String(String),
}

impl AbiValue {
    /// ABI type name.
    ///
    /// ```
    /// use tessera::merkle::evm::AbiValue;
    /// let a = AbiValue::address("0x1111111111111111111111111111111111111111").unwrap();
    /// assert_eq!((a.type_name(), AbiValue::uint(7).type_name()), ("address", "uint256"));
    /// assert_eq!(a.to_json_string(), "0x1111111111111111111111111111111111111111");
    /// assert_eq!(AbiValue::uint(7).to_json_string(), "7");
    /// assert!(AbiValue::address("0x12").is_none());
    /// ```
    pub fn type_name(&self) -> &'static str {
        match self {
            AbiValue::Address(_) => "address",
            AbiValue::Uint256(_) => "uint256",
            AbiValue::String(_) => "string",
        }
    }

    /// The value as the JSON dump writes it.
    ///
    /// ```
    /// // see `AbiValue::type_name`
    /// ```
    pub fn to_json_string(&self) -> String {
        match self {
            AbiValue::Address(a) => format!("0x{}", hex::encode(a)),
            AbiValue::Uint256(u) => ethnum::U256::from_be_bytes(*u).to_string(),
            AbiValue::String(s) => s.clone(),
        }
    }

    /// An address from `0x` + 40 hex.
    ///
    /// ```
    /// // see `AbiValue::type_name`
    /// ```
    pub fn address(s: &str) -> Option<AbiValue> {
        let h = s.strip_prefix("0x")?;
        let v = hex::decode(h).ok()?;
        Some(AbiValue::Address(v.try_into().ok()?))
    }

    /// A uint256 from a u128.
    ///
    /// ```
    /// // see `AbiValue::type_name`
    /// ```
    pub fn uint(v: u128) -> AbiValue {
        AbiValue::Uint256(ethnum::U256::from(v).to_be_bytes())
    }
}

/// `abi.encode(values...)` for address, uint256 and string.
///
/// ```
/// use tessera::merkle::evm::{abi_encode, AbiValue};
/// let e = abi_encode(&[AbiValue::uint(1)]);
/// assert_eq!(e.len(), 32);
/// assert_eq!(e[31], 1);
/// ```
pub fn abi_encode(values: &[AbiValue]) -> Vec<u8> {
    let mut head = Vec::with_capacity(32 * values.len());
    let mut tail = Vec::new();
    let head_len = 32 * values.len();
    for v in values {
        match v {
            AbiValue::Address(a) => {
                head.extend_from_slice(&[0u8; 12]);
                head.extend_from_slice(a);
            }
            AbiValue::Uint256(u) => head.extend_from_slice(u),
            AbiValue::String(s) => {
                head.extend_from_slice(&ethnum::U256::from((head_len + tail.len()) as u64).to_be_bytes());
                tail.extend_from_slice(&ethnum::U256::from(s.len() as u64).to_be_bytes());
                tail.extend_from_slice(s.as_bytes());
                let pad = (32 - s.len() % 32) % 32;
                tail.extend(std::iter::repeat_n(0u8, pad));
            }
        }
    }
    head.extend(tail);
    head
}

/// The standard-v1 leaf: keccak256(keccak256(abi.encode(values))).
///
/// ```
/// use tessera::merkle::evm::{standard_leaf, AbiValue};
/// let leaf = standard_leaf(&[AbiValue::address("0x1111111111111111111111111111111111111111").unwrap(), AbiValue::uint(5_000_000_000_000_000_000)]);
/// assert_eq!(hex::encode(leaf), "eb02c421cfa48976e66dfb29120745909ea3a0f843456c263cf8f1253483e283");
/// ```
pub fn standard_leaf(values: &[AbiValue]) -> Hash {
    keccak(&keccak(&abi_encode(values)))
}

/// keccak256 of the sorted pair.
///
/// ```
/// use tessera::merkle::evm::hash_pair;
/// let (a, b) = ([1u8; 32], [2u8; 32]);
/// assert_eq!(hash_pair(&a, &b), hash_pair(&b, &a)); // sorted pair
/// ```
pub fn hash_pair(a: &Hash, b: &Hash) -> Hash {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(x);
    buf[32..].copy_from_slice(y);
    keccak(&buf)
}

/// OpenZeppelin's `makeMerkleTree`: an array of 2n-1 nodes, root at 0, `leaves[i]` at
/// `len - 1 - i`.
///
/// ```
/// use tessera::merkle::evm::{make_tree, tree_proof, verify};
/// let leaves = [[1u8; 32], [2u8; 32], [3u8; 32]];
/// let tree = make_tree(&leaves);
/// assert_eq!(tree.len(), 5);
/// let i = tree.len() - 1 - 2; // leaves[2]
/// assert!(verify(&tree[0], &leaves[2], &tree_proof(&tree, i)));
/// ```
pub fn make_tree(leaves: &[Hash]) -> Vec<Hash> {
    if leaves.is_empty() {
        return Vec::new();
    }
    let n = 2 * leaves.len() - 1;
    let mut tree = vec![[0u8; 32]; n];
    for (i, l) in leaves.iter().enumerate() {
        tree[n - 1 - i] = *l;
    }
    for i in (0..n - leaves.len()).rev() {
        tree[i] = hash_pair(&tree[2 * i + 1], &tree[2 * i + 2]);
    }
    tree
}

/// Proof (sibling hashes, leaf to root) for the node at `index` of a tree array.
///
/// ```
/// // see `make_tree`
/// ```
pub fn tree_proof(tree: &[Hash], mut index: usize) -> Vec<Hash> {
    let mut proof = Vec::new();
    while index > 0 {
        let sibling = if index % 2 == 1 { index + 1 } else { index - 1 };
        proof.push(tree[sibling]);
        index = (index - 1) / 2;
    }
    proof
}

/// `MerkleProof.verify`: fold the proof with [`hash_pair`] and compare with the root.
///
/// ```
/// use tessera::merkle::evm::{hash_pair, verify};
/// let (a, b) = ([1u8; 32], [2u8; 32]);
/// assert!(verify(&hash_pair(&a, &b), &a, &[b]));
/// ```
pub fn verify(root: &Hash, leaf: &Hash, proof: &[Hash]) -> bool {
    proof.iter().fold(*leaf, |acc, p| hash_pair(&acc, p)) == *root
}

/// A built StandardMerkleTree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandardTree {
    /// ABI types of each value.
    pub encoding: Vec<&'static str>,
    /// Node array (root first).
    pub tree: Vec<Hash>,
    /// Values in input order with their tree index.
    pub values: Vec<(Vec<AbiValue>, usize)>,
}

impl StandardTree {
    /// `StandardMerkleTree.of(values, encoding, { sortLeaves })`.
    ///
    /// ```
    /// use tessera::merkle::evm::{AbiValue, StandardTree};
    /// let t = StandardTree::of(vec![
    ///     vec![AbiValue::address("0x1111111111111111111111111111111111111111").unwrap(), AbiValue::uint(5_000_000_000_000_000_000)],
    ///     vec![AbiValue::address("0x2222222222222222222222222222222222222222").unwrap(), AbiValue::uint(2_500_000_000_000_000_000)],
    /// ], true);
    /// assert_eq!(hex::encode(t.root().unwrap()), "d4dee0beab2d53f2cc83e567171bd2820e49898130a22622b10ead383e90bd77");
    /// ```
    pub fn of(values: Vec<Vec<AbiValue>>, sort_leaves: bool) -> StandardTree {
        let encoding = values
            .first()
            .map(|v| v.iter().map(AbiValue::type_name).collect())
            .unwrap_or_default();
        let mut hashed: Vec<(Hash, usize)> = values.iter().enumerate().map(|(i, v)| (standard_leaf(v), i)).collect();
        if sort_leaves {
            hashed.sort_by_key(|a| a.0);
        }
        let leaves: Vec<Hash> = hashed.iter().map(|h| h.0).collect();
        let tree = make_tree(&leaves);
        let mut index = vec![0usize; values.len()];
        for (pos, (_, vi)) in hashed.iter().enumerate() {
            index[*vi] = tree.len() - 1 - pos;
        }
        StandardTree {
            encoding,
            tree,
            values: values.into_iter().zip(index).collect(),
        }
    }

    /// The root, `None` for an empty tree.
    ///
    /// ```
    /// use tessera::merkle::evm::{verify, AbiValue, StandardTree};
    /// let t = StandardTree::of(vec![vec![AbiValue::address("0x1111111111111111111111111111111111111111").unwrap(), AbiValue::uint(5)]], true);
    /// assert!(verify(&t.root().unwrap(), &t.leaf(0), &t.proof(0)));
    /// assert_eq!(t.dump_json()["format"], "standard-v1");
    /// ```
    pub fn root(&self) -> Option<Hash> {
        self.tree.first().copied()
    }

    /// The proof of the i-th value (input order).
    ///
    /// ```
    /// // see `StandardTree::root`
    /// ```
    pub fn proof(&self, i: usize) -> Vec<Hash> {
        tree_proof(&self.tree, self.values[i].1)
    }

    /// The leaf hash of the i-th value.
    ///
    /// ```
    /// // see `StandardTree::root`
    /// ```
    pub fn leaf(&self, i: usize) -> Hash {
        self.tree[self.values[i].1]
    }

    /// The dump in the library's JSON format (`StandardMerkleTree.load` input).
    ///
    /// ```
    /// // see `StandardTree::root`
    /// ```
    pub fn dump_json(&self) -> serde_json::Value {
        serde_json::json!({
            "format": "standard-v1",
            "leafEncoding": self.encoding,
            "tree": self.tree.iter().map(hex0x).collect::<Vec<_>>(),
            "values": self.values.iter().map(|(v, i)| serde_json::json!({
                "value": v.iter().map(AbiValue::to_json_string).collect::<Vec<_>>(),
                "treeIndex": i,
            })).collect::<Vec<_>>(),
        })
    }
}

/// `0x`-prefixed lowercase hex.
///
/// ```
/// assert_eq!(tessera::merkle::evm::hex0x(&[0xab; 32])[..6], *"0xabab");
/// ```
pub fn hex0x(h: &Hash) -> String {
    format!("0x{}", hex::encode(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_encode_string_is_offset_length_padded_data() {
        let e = abi_encode(&[AbiValue::String("abc".into())]);
        assert_eq!(e.len(), 96);
        assert_eq!(e[31], 0x20);
        assert_eq!(e[63], 3);
        assert_eq!(&e[64..67], b"abc");
    }

    #[test]
    fn every_proof_of_a_tree_verifies_and_a_wrong_leaf_does_not() {
        for n in 1..40u128 {
            let t = StandardTree::of(
                (0..n)
                    .map(|i| vec![AbiValue::Address([i as u8; 20]), AbiValue::uint(i * 1000 + 1)])
                    .collect(),
                true,
            );
            let root = t.root().unwrap();
            for i in 0..n as usize {
                assert!(verify(&root, &t.leaf(i), &t.proof(i)), "n={n} i={i}");
                assert!(!verify(&root, &[7u8; 32], &t.proof(i)));
            }
        }
    }
}
