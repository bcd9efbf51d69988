#!/usr/bin/env bash
# System packages the default build and the tests need (Debian 12), installed only when missing:
# libgdal-dev (GDAL 3.6.2) for the `gdal` crate behind `tessera export --format gpkg|fgb|...` and
# OGR place sources, gdal-bin for the ogrinfo/ogr2ogr/gdalinfo the tests check exports with.
# README command 1 (`--no-default-features`) needs none of this.
set -euo pipefail
if command -v gdal-config >/dev/null 2>&1 && command -v ogrinfo >/dev/null 2>&1 && command -v pkg-config >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends libgdal-dev gdal-bin pkg-config >/dev/null
gdal-config --version
