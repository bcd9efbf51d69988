#!/usr/bin/env bash
# A camera video far larger than its telemetry ingests in flat memory:
#   bash benches/video_ingest.sh [GIB] [DIR]
# Simulates a one-hour CAMM drive (GNSS 1 Hz, IMU 10 Hz: ~72,000 telemetry samples), appends a
# GIB-GiB (default 4) `mdat` box standing for the video frames (a sparse file: no disk used
# until the lake copies it), then times `tessera ingest` of it and of the bare telemetry file and
# prints both peak RSS figures. Needs a built `tessera` (TESSERA=path; default target/release).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
TESSERA="${TESSERA:-$TARGET/release/tessera}"
GIB="${1:-4}"
DIR="${2:-$TARGET/video-bench}"
rm -rf "$DIR" && mkdir -p "$DIR"
"$TESSERA" simulate --out "$DIR/fleet" --drivers 4 --epochs 1 --trips 1 --minutes 60 --format camm >/dev/null
SMALL=$(ls "$DIR"/fleet/car-001/*.mp4)
cp "$SMALL" "$DIR/small.mp4"
cp "$SMALL" "$DIR/big.mp4"
python3 - "$DIR/big.mp4" "$GIB" <<'PY'
import os, struct, sys
path, gib = sys.argv[1], int(sys.argv[2])
size = 16 + (gib << 30)
with open(path, "ab") as f:
    f.write(struct.pack(">I4sQ", 1, b"mdat", size))  # a 64-bit box: the video frames
    f.truncate(f.tell() + size - 16)                # sparse
PY
for f in small big; do
  /usr/bin/time -f "%M %e" -o "$DIR/$f.time" "$TESSERA" ingest --lake "$DIR/lake-$f" --device cam-1 "$DIR/$f.mp4" >/dev/null
  read -r rss secs < "$DIR/$f.time"
  printf '%-6s %14s bytes  peak RSS %7.1f MiB  %6.1f s\n' "$f" "$(stat -c %s "$DIR/$f.mp4")" "$(awk "BEGIN {print $rss/1024}")" "$secs"
done
"$TESSERA" sql --lake "$DIR/lake-big" "SELECT count(*) AS imu_samples FROM imu"
rm -rf "$DIR/lake-big" "$DIR/big.mp4"
