import os
import shutil
import subprocess
from pathlib import Path

import pytest

import tessera

REPO = Path(__file__).resolve().parents[2]


def tessera_bin():
    """The CLI built by `cargo test --release` (scripts/test.sh exports TESSERA_BIN)."""
    env = os.environ.get("TESSERA_BIN")
    candidates = [env] if env else []
    target = os.environ.get("CARGO_TARGET_DIR", str(REPO / "target"))
    candidates.append(str(Path(target) / "release" / "tessera"))
    for c in candidates:
        if c and Path(c).is_file():
            return c
    if os.environ.get("CI"):
        raise RuntimeError("the tessera binary is needed in CI; run scripts/test.sh")
    pytest.skip("tessera binary not built")


@pytest.fixture(scope="session")
def fleet(tmp_path_factory):
    """A small simulated fleet on disk: DIR/<device>/<files>, DIR/registry.csv."""
    d = tmp_path_factory.mktemp("fleet")
    tessera.simulate(d, drivers=6, epochs=2, trips=1, minutes=4)
    return d


def trace_files(fleet):
    return sorted(p for p in Path(fleet).glob("car-*/*") if p.is_file())


@pytest.fixture()
def lake(tmp_path, fleet):
    """A lake with the fleet ingested through Python."""
    lake = tmp_path / "lake"
    for dev in sorted(p for p in Path(fleet).iterdir() if p.is_dir()):
        tessera.ingest(lake, dev.name, sorted(dev.iterdir()))
    shutil.copy(Path(fleet) / "registry.csv", lake / "registry.csv")
    return lake


def run_cli(*args):
    return subprocess.run([tessera_bin(), *map(str, args)], check=True, capture_output=True, text=True).stdout
