#!/usr/bin/env bash
# System packages tessera-gis builds and tests against (Debian 12: GDAL 3.6.2):
# libgdal-dev for the `gdal` crate, gdal-bin for the ogrinfo/ogr2ogr/gdalinfo the tests run.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends libgdal-dev gdal-bin pkg-config
gdal-config --version
