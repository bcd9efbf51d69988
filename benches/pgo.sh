#!/usr/bin/env bash
# A profile-guided (PGO) build of the `tessera` CLI, trained on the bench's own workloads:
#   bash benches/pgo.sh [DIR]
# Prints the path of the optimized binary ($TARGET/pgo/dist/tessera) on its last line.
#
# 1. `dist` build of the bench binaries (tessera-scale simulates the training lake);
# 2. an instrumented `dist` build of the CLI (`-Cprofile-generate`, target dir $TARGET/pgo-gen);
# 3. training: `tessera-scale --fixes 1e6 --nmea 1e6 --repeat 1` with that binary (durable NMEA
#    ingest, the epoch with the default policy and with the places policy, cold and cached), in
#    DIR (default $TARGET/scale, the bench's lakes: the 10^6 lake is reused);
# 4. `llvm-profdata merge`, then the `dist` build with `-Cprofile-use` ($TARGET/pgo; every
#    dependency is rebuilt with the new profile, ~4 minutes on 2 cores).
# The PGO flag is added to `.cargo/config.toml`'s rustflags (`--config` arrays are joined with
# the file's, so the x86-64-v3 level stays; with RUSTFLAGS set, which replaces every config
# rustflag in cargo, it is appended to RUSTFLAGS instead). PGO moves code, never arithmetic:
# no floating-point contraction or reassociation either way, so the outputs are the same bytes
# (checked on 10^7-fix epochs with the default and places policies, 2026-12-06). Needs rustup's `llvm-tools` component (the
# `llvm-profdata` of rustc's own LLVM; Debian's LLVM 14 cannot read rustc 1.95's profiles):
#   rustup component add llvm-tools
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
DIR="${1:-$TARGET/scale}"
PROFDATA=$(find "$(rustc --print sysroot)/lib/rustlib" -name llvm-profdata -type f 2>/dev/null | head -1)
[ -n "$PROFDATA" ] || { echo "benches/pgo.sh: no llvm-profdata for $(rustc --version); run: rustup component add llvm-tools" >&2; exit 1; }
# The CLI's `dist` build into target dir $2 with rustc flag $1 added.
build_cli() {
  if [ -n "${RUSTFLAGS:-}" ]; then
    RUSTFLAGS="$RUSTFLAGS $1" CARGO_TARGET_DIR="$2" cargo build --profile dist -p tessera-cli --no-default-features >&2
  else
    CARGO_TARGET_DIR="$2" cargo build --config "target.'cfg(all())'.rustflags=[\"$1\"]" \
      --profile dist -p tessera-cli --no-default-features >&2
  fi
}
DATA="$TARGET/pgo-data"
cargo build --profile dist -p tessera-benches >&2
rm -rf "$DATA"
build_cli "-Cprofile-generate=$DATA" "$TARGET/pgo-gen"
"$TARGET/dist/tessera-scale" --nmea 1e6 --fixes 1e6 --repeat 1 --dir "$DIR" \
  --tessera "$TARGET/pgo-gen/dist/tessera" >&2
"$PROFDATA" merge -o "$DATA.merged" "$DATA" >&2
# Named by its hash: cargo does not track the profile's content, only the flags naming it, so a
# new profile under an old name would leave the previous build in place.
PROFILE="$TARGET/pgo-$(sha256sum "$DATA.merged" | cut -c1-16).profdata"
rm -f "$TARGET"/pgo-*.profdata
mv "$DATA.merged" "$PROFILE"
build_cli "-Cprofile-use=$PROFILE" "$TARGET/pgo"
echo "$TARGET/pgo/dist/tessera"
