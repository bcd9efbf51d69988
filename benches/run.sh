#!/usr/bin/env bash
# The performance numbers in the README, from one command:
#   bash benches/run.sh [SIZES] [DIR]
# SIZES: comma-separated fix counts (default 1e6,1e7,1e8); DIR: where the simulated lakes go
# (default $CARGO_TARGET_DIR/scale or target/scale; lakes are reused across runs).
# NMEA=N (default 1e7): size of the NMEA fleet for the at-scale `tessera ingest` row (~170 bytes
# per fix on disk). Builds the `dist` profile (release with fat LTO, Cargo.toml; binaries in
# $TARGET/dist) for x86-64-v3 (.cargo/config.toml), the CPU level of the Polars wheel.
# Installs the Python peers (Polars + polars-h3, pynmea2) into a venv in the target dir.
# PGO=1: the child-process rows (tessera-scale's CLI runs, Spark's CLI comparison) use a
# profile-guided build of the CLI instead (benches/pgo.sh: ~12 more minutes, needs rustup's
# llvm-tools); the in-process rows (tessera-bench, tessera-attacks) are the same either way.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
# The peers' scripts of this checkout, whichever checkout built the binaries.
export TESSERA_BENCH_PEERS="$PWD/benches/peer"
SIZES="${1:-1e6,1e7,1e8}"
DIR="${2:-$TARGET/scale}"
VENV="$TARGET/bench-venv"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r benches/peer/requirements.txt
cargo build --profile dist -p tessera-cli -p tessera-benches --no-default-features
TESSERA="$TARGET/dist/tessera"
if [ "${PGO:-0}" != 0 ]; then TESSERA=$(bash benches/pgo.sh "$DIR" | tail -1); fi
echo "== tessera: $TESSERA"
echo "== machine: $(nproc) cpus, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== parse / ingest / small epoch (tessera-bench)"
"$TARGET/dist/tessera-bench" --python "$VENV/bin/python"
echo "== trust: the adversarial fleet with trust off and on (tessera-attacks)"
"$TARGET/dist/tessera-attacks"
echo "== scale (tessera-scale)"
# The whole-epoch peer (an independent Polars re-implementation of policy v1, kept outside the
# repo with the shared corpus); PEER_EPOCH overrides its path, and without it that row is skipped.
PEER_EPOCH="${PEER_EPOCH:-$PWD/../shared/peers/polars_epoch.py}"
PEER_ARGS=()
if [ -f "$PEER_EPOCH" ]; then PEER_ARGS=(--peer-epoch "$PEER_EPOCH"); else echo "(no $PEER_EPOCH: whole-epoch peer rows skipped)"; fi
"$TARGET/dist/tessera-scale" --nmea "${NMEA:-1e7}" --fixes "$SIZES" --dir "$DIR" --python "$VENV/bin/python" --tessera "$TESSERA" "${PEER_ARGS[@]}"
# Spark (issue #17): the same 10^7 epoch (or the largest size asked for) through tessera.spark on
# local[$(nproc)] vs the CLI. Installs pyspark and this package into the bench venv. SPARK=0 skips.
# The extension is built by pip (maturin) with the release profile, the CLI above with dist (2-3 %
# faster): the Spark/CLI ratio is that much in the CLI's favour.
if [ "${SPARK:-1}" != 0 ]; then
  # pyspark's Arrow path (mapInArrow, toPandas) needs pandas; the same pins as python/requirements-test.txt.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "pyspark==4.1.1" "pandas>=2.2"
  CARGO_TARGET_DIR="$TARGET" "$VENV/bin/python" -m pip install -q --disable-pip-version-check ./python
  BIG=$(echo "$SIZES" | tr ',' '\n' | python3 -c 'import sys; v=[int(float(x)) for x in sys.stdin if x.strip()]; print(max([x for x in v if x <= 10**7] or v))')
  echo "== spark (benches/spark_epoch.py on lake-$BIG)"
  PYSPARK_PYTHON="$VENV/bin/python" "$VENV/bin/python" benches/spark_epoch.py --lake "$DIR/lake-$BIG" --tessera "$TESSERA"
fi
