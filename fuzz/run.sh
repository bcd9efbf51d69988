#!/usr/bin/env bash
# Fuzz every parser of untrusted bytes: `bash fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]`
# (default 60 s each, every target). Needs `cargo install cargo-fuzz`. Builds without a sanitizer
# (`-s none`, works on the stable toolchain); with RUSTC_BOOTSTRAP=1 set, builds with
# AddressSanitizer instead. Seeds: fuzz/seeds/<target>/ plus the shared corpus when present.
# New inputs go to fuzz/corpus/<target>/, crashes to fuzz/artifacts/<target>/ (both ignored by
# git: a crash becomes a regression test in the crate, not a file here). Prints executions and
# findings per target and exits non-zero when any target found a crash.
set -euo pipefail
cd "$(dirname "$0")"
SECS="${1:-60}"
shift || true
ALL=(nmea nmea_framed nmea_line gpx parquet_source policy_toml registry_csv merkle_claim upload_headers gpmf camm mp4 blackvue point_indexer)
TARGETS=("${@:-${ALL[@]}}")
SAN=(-s none)
if [ "${RUSTC_BOOTSTRAP:-}" = "1" ]; then SAN=(-s address); fi
SHARED=../../shared/corpus
seeds_of() {
  case "$1" in
    nmea|nmea_framed|nmea_line) echo "$SHARED/nmea/gpsd $SHARED/nmea/other ../data/sample/car-001" ;;
    gpx) echo "$SHARED/gpx/gpxpy $SHARED/gpx/georust-gpx" ;;
    merkle_claim) echo "$SHARED/merkle" ;;
    gpmf) echo "$SHARED/telemetry/gopro" ;;
    *) echo "" ;;
  esac
}
cargo fuzz build "${SAN[@]}" -O
mkdir -p logs
status=0
printf '%-16s %12s %10s %8s\n' target executions exec/s crashes
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  dirs=("corpus/$t")
  # (a target without seeds — point_indexer — starts from libFuzzer's empty input: passing a
  # missing directory made libFuzzer exit before running it)
  for d in "seeds/$t" $(seeds_of "$t"); do [ -d "$d" ] && dirs+=("$d"); done
  set +e
  cargo fuzz run "${SAN[@]}" -O "$t" "${dirs[@]}" -- -max_total_time="$SECS" -print_final_stats=1 \
    -max_len="$([ "$t" = mp4 ] && echo 262144 || echo 65536)" -timeout=10 -rss_limit_mb=4096 >"logs/$t.log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' || echo 0)
  crashes=$(find "artifacts/$t" -type f | wc -l)
  printf '%-16s %12s %10s %8s\n' "$t" "$execs" "$rate" "$crashes"
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then status=1; fi
done
exit $status
