#!/usr/bin/env bash
# Four analyst queries over a lake with `tessera sql`, best of 3 each, with a digest of each
# answer (the same answer whatever the build): a GROUP BY over every fix; H3 indexing of every
# fix; an epoch's new cells from `explain`; a join with COUNT DISTINCT. Used to choose the
# opt-level of DataFusion's crates (see Cargo.toml).
#   bash benches/sql.sh LAKE [TESSERA_BIN]     e.g. a lake from `tessera simulate --fixes 1e7`
#                                              with one epoch run (benches/run.sh leaves one)
set -euo pipefail
LAKE="${1:?usage: bash benches/sql.sh LAKE [TESSERA_BIN]}"
BIN="${2:-${CARGO_TARGET_DIR:-$(dirname "$0")/../target}/release/tessera}"
OUT="$(mktemp)"
trap 'rm -f "$OUT"' EXIT
queries=(
  "SELECT device, count(*) AS n, avg(hdop) AS h, max(speed_mps) AS v FROM fixes GROUP BY device ORDER BY n DESC, device LIMIT 5"
  "SELECT h3_cell_to_string(h3_latlng_to_cell(lat, lon, 7)) AS d, count(*) AS n FROM fixes GROUP BY 1 ORDER BY n DESC, d LIMIT 5"
  "SELECT epoch, device, count(*) AS new_cells FROM explain WHERE age_epochs IS NULL AND rank = 1 GROUP BY epoch, device ORDER BY new_cells DESC, device LIMIT 5"
  "SELECT e.device, count(*) AS v, count(DISTINCT e.cell) AS c FROM explain e JOIN sources s ON e.device = s.device GROUP BY e.device ORDER BY v DESC, e.device LIMIT 5"
)
printf '%8s  %-8s  %s\n' best_s answer query
for q in "${queries[@]}"; do
  best=""
  for _ in 1 2 3; do
    s=$(date +%s%N)
    "$BIN" sql --lake "$LAKE" --format csv "$q" > "$OUT"
    t=$(( ($(date +%s%N) - s) / 1000000 ))
    if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
  done
  printf '%8s  %-8s  %s\n' "$(printf '%d.%03d' $((best / 1000)) $((best % 1000)))" "$(sha256sum < "$OUT" | cut -c1-8)" "${q:0:70}"
done
