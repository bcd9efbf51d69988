#!/usr/bin/env bash
# The full test suite: what the README's second command runs and what CI runs.
# Uses one cargo profile (release) and one target dir for tests, CLI and later the Python
# extension; honours CARGO_TARGET_DIR when set.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --workspace
