// node check.mjs MERKLE_JSON CLAIMS_JSON
// Loads tessera's tree dump with StandardMerkleTree.load, validates it, and checks every claim:
// the root matches, the proof verifies, the library's own proof equals ours, and a claim for
// one more base unit does not verify. Prints "N passed, M failed".
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { readFileSync } from "node:fs";

const [dumpPath, claimsPath] = process.argv.slice(2);
const tree = StandardMerkleTree.load(JSON.parse(readFileSync(dumpPath, "utf8")));
tree.validate();
const doc = JSON.parse(readFileSync(claimsPath, "utf8"));
let passed = 0, failed = 0;
const check = (ok, what) => { if (ok) passed++; else { failed++; console.error("FAILED:", what); } };
check(tree.root === doc.root, `root ${tree.root} vs ${doc.root}`);
const enc = ["address", "uint256"];
for (const c of doc.claims) {
  const value = [c.recipient, c.amount];
  check(StandardMerkleTree.verify(doc.root, enc, value, c.proof), `verify ${c.recipient}`);
  check(JSON.stringify(tree.getProof(value)) === JSON.stringify(c.proof), `library proof == ours for ${c.recipient}`);
  check(tree.leafHash(value) === c.leaf, `leaf ${c.recipient}`);
  const forged = [c.recipient, (BigInt(c.amount) + 1n).toString()];
  check(!StandardMerkleTree.verify(doc.root, enc, forged, c.proof), `forged amount rejected for ${c.recipient}`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && doc.claims.length > 0 ? 0 : 1);
