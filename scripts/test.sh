#!/usr/bin/env bash
# The full test suite: what the README's second command runs and what CI runs.
# One cargo profile (release) and one target dir serve tests, CLI and the Python extension;
# CARGO_TARGET_DIR is honoured when set. Python packages go into a venv inside the target dir.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"

# 0. System packages: GDAL (libgdal-dev, gdal-bin) for the GIS build and its checks.
bash scripts/setup-system.sh

# 1. The real OpenZeppelin merkle-tree library for the JS proof check (pinned by its lockfile).
if command -v npm >/dev/null 2>&1 && [ ! -d tools/merkle-check/node_modules/@openzeppelin/merkle-tree ]; then
  npm ci --prefix tools/merkle-check --no-audit --no-fund --loglevel=error
fi

# 2. Rust: every crate. `failpoints` lets the crash tests park `epoch run` and the server at exact
#    steps and SIGKILL them there. The workspace's own crates are linted while they compile:
#    clippy-driver is the workspace's rustc wrapper (what `cargo clippy` does, but with code
#    generation), with `-D warnings`, so a lint fails the run and no dependency is compiled a
#    second time in check mode (a fresh `cargo clippy` took 16.5 min of CI); that includes
#    tessera-python, the extension module step 3 installs. TESSERA_NO_LINT=1 skips the lint.
if [ "${TESSERA_NO_LINT:-0}" != 1 ]; then
  RUSTC_WORKSPACE_WRAPPER="$(command -v clippy-driver)" || { echo "clippy-driver not found (rustup component add clippy, or TESSERA_NO_LINT=1)" >&2; exit 1; }
  export RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
fi
cargo test --release --workspace --features tessera-cli/failpoints

# 3. Python: the extension module came out of the cargo build above (python/tests/extension.rs
#    makes `cargo test` build it, with the same profile and dependency features as everything
#    else); install it with the package's Python files into a venv, then pytest, which also
#    executes the notebooks. (Users build it with `pip install ./python`, i.e. maturin: here that
#    would recompile ~70 crates whose features resolve differently for the one package.)
VENV="$TARGET/py-venv"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r python/requirements-test.txt
"$VENV/bin/python" -m pip uninstall -q -y tessera 2>/dev/null || true
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
SUFFIX="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
rm -rf "$SITE/tessera"
cp -r python/tessera "$SITE/tessera"
find "$SITE/tessera" \( -name __pycache__ -o -name '*.so' \) -prune -exec rm -rf {} +
cp "$TARGET/release/deps/lib_tessera.so" "$SITE/tessera/_tessera$SUFFIX"
TESSERA_BIN="$TARGET/release/tessera" "$VENV/bin/python" -m pytest python/tests -q -p no:cacheprovider
