#!/usr/bin/env bash
# The full test suite: what the README's second command runs and what CI runs.
# One cargo profile (release) and one target dir serve tests, CLI and the Python extension;
# CARGO_TARGET_DIR is honoured when set.
set -euo pipefail
cd "$(dirname "$0")/.."

# The real OpenZeppelin merkle-tree library, for the JS proof check (pinned by package-lock.json).
if command -v npm >/dev/null 2>&1; then
  if [ ! -d tools/merkle-check/node_modules/@openzeppelin/merkle-tree ]; then
    npm ci --prefix tools/merkle-check --no-audit --no-fund --loglevel=error
  fi
fi

# failpoints: lets the crash tests park `epoch run` at exact commit steps and SIGKILL it there.
cargo test --release --workspace --features tessera-cli/failpoints
