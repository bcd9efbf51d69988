//! OpenZeppelin merkle-tree test vectors (`../shared/corpus/merkle`, when present): our trees,
//! leaves, roots and proofs must equal the library's own dumps exactly.

#[path = "support/corpus.rs"]
mod support;

use tessera::merkle::evm::{hex0x, make_tree, tree_proof, verify, AbiValue, Hash, StandardTree};

fn load(name: &str) -> Option<serde_json::Value> {
    let p = support::corpus("merkle")?.join(name);
    Some(serde_json::from_slice(&std::fs::read(p).ok()?).unwrap())
}

fn h(s: &str) -> Hash {
    hex::decode(s.trim_start_matches("0x")).unwrap().try_into().unwrap()
}

fn strs(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn readme_vector_address_uint256_root_leaves_and_proofs() {
    let Some(v) = load("oz_readme_address_uint256.vector.json") else {
        return;
    };
    let values: Vec<Vec<AbiValue>> = v["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            vec![
                AbiValue::address(p[0].as_str().unwrap()).unwrap(),
                AbiValue::uint(p[1].as_str().unwrap().parse().unwrap()),
            ]
        })
        .collect();
    let t = StandardTree::of(values, true);
    assert_eq!(t.tree.iter().map(hex0x).collect::<Vec<_>>(), strs(&v["dump"]["tree"]));
    assert_eq!(t.dump_json(), v["dump"]);
    assert_eq!(hex0x(&t.leaf(0)), v["leafHashes"]["0x1111..."]);
    assert_eq!(
        t.proof(0).iter().map(hex0x).collect::<Vec<_>>(),
        strs(&v["proofs"]["0x1111..."])
    );
    assert_eq!(
        t.proof(1).iter().map(hex0x).collect::<Vec<_>>(),
        strs(&v["proofs"]["0x2222..."])
    );
    // The derived three-leaf example.
    let mut three: Vec<Vec<AbiValue>> = t.values.iter().map(|x| x.0.clone()).collect();
    let added = &v["derived_3_leaf_example_NOT_PUBLISHED"];
    three.push(vec![
        AbiValue::address(added["added"][0].as_str().unwrap()).unwrap(),
        AbiValue::uint(added["added"][1].as_str().unwrap().parse().unwrap()),
    ]);
    assert_eq!(hex0x(&StandardTree::of(three, true).root().unwrap()), added["root"]);
}

#[test]
fn standard_v1_string_dumps_sorted_and_unsorted_match_exactly() {
    for (file, sort) in [
        ("oz_standard-v1.sorted.1_0_6.json", true),
        ("oz_standard-v1.unsorted.1_0_6.json", false),
    ] {
        let Some(d) = load(file) else { return };
        // Values appear in the dump in input order.
        let values: Vec<Vec<AbiValue>> = d["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| vec![AbiValue::String(x["value"][0].as_str().unwrap().into())])
            .collect();
        let t = StandardTree::of(values, sort);
        assert_eq!(t.dump_json(), d, "{file}");
        let root = t.root().unwrap();
        for i in 0..t.values.len() {
            assert!(verify(&root, &t.leaf(i), &t.proof(i)));
        }
    }
}

#[test]
fn simple_v1_trees_are_built_the_same_way() {
    for file in ["oz_simple-v1.sorted.1_0_6.json", "oz_simple-v1.unsorted.1_0_6.json"] {
        let Some(d) = load(file) else { return };
        let tree: Vec<Hash> = strs(&d["tree"]).iter().map(|s| h(s)).collect();
        // Rebuild from the leaves in tree order (leaf i sits at len-1-i).
        let n = d["values"].as_array().unwrap().len();
        let leaves: Vec<Hash> = (0..n).map(|i| tree[tree.len() - 1 - i]).collect();
        assert_eq!(make_tree(&leaves), tree, "{file}");
        for v in d["values"].as_array().unwrap() {
            let idx = v["treeIndex"].as_u64().unwrap() as usize;
            assert_eq!(hex0x(&tree[idx]), v["value"]);
            assert!(verify(&tree[0], &tree[idx], &tree_proof(&tree, idx)));
        }
    }
}
