#!/usr/bin/env bash
# System packages the default build and the tests need (Debian 12), installed only when missing:
# - libgdal-dev (GDAL 3.6.2) for the `gdal` crate behind `tessera export --format gpkg|fgb|...` and
#   OGR place sources, gdal-bin for the ogrinfo/ogr2ogr/gdalinfo the tests check exports with;
# - openjdk-17-jre-headless, the Java that PySpark 4.x runs on (tessera.spark and its tests).
# README command 1 (`--no-default-features`) needs none of this.
set -euo pipefail
want=()
if ! { command -v gdal-config && command -v ogrinfo && command -v pkg-config; } >/dev/null 2>&1; then
  want+=(libgdal-dev gdal-bin pkg-config)
fi
java_ok() {
  command -v java >/dev/null 2>&1 || return 1
  local v
  v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
  [ "${v:-0}" = 17 ] || [ "${v:-0}" = 21 ]
}
if ! java_ok; then
  want+=(openjdk-17-jre-headless)
fi
if [ ${#want[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
$SUDO apt-get update -qq
# The JRE's postinst needs man directories that slim images leave out.
mkdir -p /usr/share/man/man1 2>/dev/null || $SUDO mkdir -p /usr/share/man/man1
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
if command -v gdal-config >/dev/null 2>&1; then gdal-config --version; fi
java -version 2>&1 | head -1
