"""tessera — exact, replayable rewards for decentralized mapping networks.

The same Rust engine as the ``tessera`` command line, with Arrow tables in and out (``pyarrow.Table``,
exchanged through the Arrow C stream interface without copying). Long work runs with the GIL
released. Errors raise :class:`TesseraError` with the file, line or field at fault.

Stage by stage (tables)::

    fixes, rejected, lines, imu = tessera.read_trace("trip.nmea", device="car-7")
    accepted, rejected_fixes = tessera.clean(fixes)
    visits = tessera.cover(accepted)
    explain = tessera.score(visits, "2026-W47")
    amounts = tessera.allocate(10**12, explain.select(["recipient", "points"]))

Lake level (the same bytes as the CLI)::

    tessera.ingest("lake", "car-7", ["trip.nmea"])
    summary = tessera.run_epoch("lake", "2026-W47", 10**12, registry="registry.csv")
    tessera.verify_epoch("lake", "2026-W47")["ok"]
"""

from __future__ import annotations

import datetime as _dt
import json as _json
import os as _os
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import pyarrow as _pa

from . import _tessera
from ._tessera import TesseraError

__version__: str = _tessera.__version__
__all__ = [
    "TesseraError",
    "Trace",
    "read_trace",
    "parse_trace",
    "clean",
    "cover",
    "score",
    "allocate",
    "ingest",
    "run_epoch",
    "verify_epoch",
    "read_manifest",
    "proof",
    "explain",
    "diff_policy",
    "review",
    "epoch_table",
    "render",
    "simulate",
    "default_policy",
]

PathLike = Union[str, "_os.PathLike[str]"]


def _policy_text(policy: Optional[PathLike]) -> Optional[str]:
    """A policy argument: None (policy v1), a path to a TOML file, or TOML text."""
    if policy is None:
        return None
    p = _os.fspath(policy)
    if "\n" not in p and _os.path.isfile(p):
        with open(p, encoding="utf-8") as f:
            return f.read()
    return p


def parse_trace(data: bytes, device: str, source: str = "memory") -> Tuple[_pa.Table, _pa.Table, Dict[str, Any]]:
    """Parse trace bytes (NMEA 0183, BlackVue ``.gps``, Android GnssLogger, GPX).

    Returns ``(fixes, rejections, lines)``: the normalized fixes, the rejection report (line,
    reason, detail for every line that did not become a fix) and the line accounting
    (``total == fix + aux + ignored + blank + comment + rejected``).
    """
    fixes, rej, lines = _tessera.parse_bytes(bytes(data), device, source)
    return fixes, rej, _json.loads(lines)


class Trace(NamedTuple):
    """A trace file read by :func:`read_trace`."""

    fixes: _pa.Table
    """Normalized fixes (time, lat, lon, alt_m, quality, sats, hdop, speed_mps, course_deg, line...)."""
    rejections: _pa.Table
    """The rejection report: line (or sample), reason, detail (byte offsets for camera files)."""
    lines: Dict[str, Any]
    """Accounting: ``total == fix + aux + imu + ignored + blank + comment + rejected``; camera
    files add ``telemetry`` (kind, container, clock, axes, model) and ``ignored_types`` by
    ``gpmf:<FourCC>`` / ``camm:<case>``."""
    imu: _pa.Table
    """IMU readings of camera telemetry: device, time (UTC, µs), sensor (accel m/s², gyro rad/s,
    mag µT), x, y, z in the axes ``lines["telemetry"]["axes"]`` names, line (sample ordinal);
    empty for NMEA, GPX and Parquet."""


def read_trace(path: PathLike, device: str = "unknown") -> Trace:
    """Read a trace file of any format tessera ingests: NMEA 0183 (plain, BlackVue ``.gps``,
    GnssLogger), GPX, Parquet fixes, and camera telemetry — GoPro GPMF (MP4 ``gpmd`` track or
    a raw payload), CAMM MP4, BlackVue MP4. A video is read by seeking to its telemetry, in
    bounded memory. Returns a :class:`Trace` ``(fixes, rejections, lines, imu)``; the rejection
    report names the file.
    """
    fixes, rej, lines, imu = _tessera.read_file(_os.fspath(path), device)
    return Trace(fixes, rej, _json.loads(lines), imu)


def clean(fixes: _pa.Table, policy: Optional[PathLike] = None) -> Tuple[_pa.Table, _pa.Table]:
    """Apply the fix gates (quality, HDOP, satellites) and trace checks (time backwards,
    duplicates, teleports, gaps) per device, in table order.

    Returns ``(accepted, rejected)``; ``accepted`` has a ``segment`` column. ``policy`` is a TOML
    file path or TOML text (default: policy v1).
    """
    return _tessera.clean(fixes, _policy_text(policy))


def cover(accepted: _pa.Table, policy: Optional[PathLike] = None) -> _pa.Table:
    """Cover cleaned fixes with H3 cells (fix cells and the grid path between consecutive fixes)
    and deduplicate into visits: one row per (cell, device)."""
    return _tessera.cover(accepted, _policy_text(policy))


def score(
    visits: _pa.Table,
    epoch: str,
    coverage: Optional[_pa.Table] = None,
    policy: Optional[PathLike] = None,
    registry: Optional[PathLike] = None,
) -> _pa.Table:
    """Score visits of ``epoch`` (``"2026-W47"``) against a coverage state (the previous epoch's
    ``coverage`` table; ``None`` means nothing was covered before). Returns the explain table: rank,
    age and every multiplier per visit, points as Decimal128(38, 6). With a registry (path or CSV
    text) the ``recipient`` column is filled in."""
    reg = None
    if registry is not None:
        r = _os.fspath(registry)
        reg = open(r, encoding="utf-8").read() if ("\n" not in r and _os.path.isfile(r)) else r
    return _tessera.score(visits, epoch, coverage, _policy_text(policy), reg)


def _pool(pool: Any) -> int:
    """A pool must be an ``int`` of base units: a float (``1e24``) would silently round, a bool
    or a negative number is a mistake."""
    if isinstance(pool, bool) or not isinstance(pool, int):
        raise TypeError(f"pool must be an int of base units (not {type(pool).__name__}): {pool!r}")
    if pool < 0:
        raise TesseraError(f"pool must be a non-negative int of base units, got {pool!r}")
    return pool


def allocate(pool: int, points: _pa.Table) -> _pa.Table:
    """Allocate an integer ``pool`` of base units over ``recipient``/``points`` (points of one
    recipient are summed): floor of the pro-rata share, remainder to the largest fractional parts,
    ties by recipient. The amounts (Decimal128(38, 0)) sum to the pool exactly."""
    return _tessera.allocate(_pool(pool), points)


def ingest(
    lake: PathLike,
    device: str,
    paths: Sequence[PathLike],
    received_at: Optional["_dt.datetime"] = None,
) -> List[Dict[str, Any]]:
    """Ingest trace files into a lake (idempotent; the same bytes twice is a duplicate), in group
    commits as ``tessera ingest`` does. A file that cannot be read or is not a trace fails alone:
    the others are ingested, then ``TesseraError`` names every file that failed.

    ``received_at`` (a timezone-aware ``datetime``; default now) is when the network received the
    files: fixes stamped after it (beyond the default policy's 300 s) are rejected
    ``after_receipt``, as ``tessera ingest --received-at``. A naive ``datetime`` raises
    ``ValueError`` (its time zone would be a guess)."""
    ms = None
    if received_at is not None:
        if received_at.tzinfo is None or received_at.utcoffset() is None:
            raise ValueError("received_at must be timezone-aware (e.g. datetime(..., tzinfo=timezone.utc))")
        ms = (received_at - _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)) // _dt.timedelta(milliseconds=1)
    return _json.loads(_tessera.ingest(_os.fspath(lake), device, [_os.fspath(p) for p in paths], ms))


def run_epoch(
    lake: PathLike,
    epoch: str,
    pool: int,
    registry: Optional[PathLike] = None,
    policy: Optional[PathLike] = None,
    replace: bool = False,
    no_prior: bool = False,
) -> Dict[str, Any]:
    """Compute an epoch and write ``epochs/<epoch>/`` atomically — byte for byte what
    ``tessera epoch run`` writes. ``registry`` defaults to ``<lake>/registry.csv``, ``policy`` (a
    file) to a published epoch's own ``policy.toml`` (so a re-run after an upgrade that added
    policy keys stays a no-op), else policy v1. ``pool`` is an ``int`` of base units (a float raises ``TypeError``).

    A published epoch is immutable: running it again is a no-op when the bytes would be the same
    and raises ``TesseraError`` saying what changed when they would differ, unless ``replace``.
    An earlier epoch with sources but no outputs raises unless ``no_prior``. Returns the summary,
    with ``pool``, ``allocated`` and each top recipient's ``amount`` as ``int``."""
    summary = _json.loads(
        _tessera.run_epoch(
            _os.fspath(lake),
            epoch,
            _pool(pool),
            None if registry is None else _os.fspath(registry),
            None if policy is None else _os.fspath(policy),
            bool(replace),
            bool(no_prior),
        )
    )
    summary["pool"] = int(summary["pool"])
    summary["allocated"] = int(summary["allocated"])
    for r in summary.get("top", []):
        r["amount"] = int(r["amount"])
    return summary


def verify_epoch(lake: PathLike, epoch: str, manifest: Optional[PathLike] = None) -> Dict[str, Any]:
    """Recompute an epoch from the lake and compare every byte; ``result["ok"]`` is True only on
    an exact match, ``result["mismatches"]`` names the files and rows that differ."""
    return _json.loads(_tessera.verify_epoch(_os.fspath(lake), epoch, None if manifest is None else _os.fspath(manifest)))


def read_manifest(lake: PathLike, epoch: str) -> Dict[str, Any]:
    """An epoch's ``manifest.json``, read through the core's typed manifest (the one definition
    the CLI and SQL read too): a file that is not a ``tessera-epoch-manifest/1`` raises
    ``TesseraError``. Amounts stay decimal strings, as published."""
    return _json.loads(_tessera.read_manifest(_os.fspath(lake), epoch))


def proof(lake: PathLike, epoch: str, recipient: Optional[str] = None) -> Dict[str, Any]:
    """A recipient's amount, leaf and merkle proof (or all claims when ``recipient`` is None),
    checked against the manifest root."""
    doc = _json.loads(_tessera.proof(_os.fspath(lake), epoch, recipient))
    if recipient is None:
        return doc
    c = doc["claims"][0]
    return {"epoch": doc["epoch"], "scheme": doc["scheme"], "root": doc["root"], **c}


def explain(lake: PathLike, epoch: str, recipient: str) -> Dict[str, Any]:
    """Which devices, cells, ranks and multipliers made a recipient's amount, and which of its
    fixes were rejected and why."""
    return _json.loads(_tessera.explain(_os.fspath(lake), epoch, recipient))


def review(lake: PathLike, epoch: str) -> Dict[str, Any]:
    """Trust review of a published epoch (what ``tessera epoch review`` prints): the devices the
    trust detectors flagged, most points without the detectors first, each with its wallet,
    points and amounts with and without trust (decimal strings), the detectors, the source files
    and the evidence rows of ``flags.parquet``."""
    return _json.loads(_tessera.review(_os.fspath(lake), epoch))


def diff_policy(lake: PathLike, epoch: str, policy: PathLike) -> List[Dict[str, Any]]:
    """What-if: per-recipient amounts of ``epoch`` under another policy (nothing is written)."""
    text = _policy_text(policy)
    assert text is not None
    return _json.loads(_tessera.diff_policy(_os.fspath(lake), epoch, text))


def epoch_table(lake: PathLike, epoch: str, name: str) -> _pa.Table:
    """One of an epoch's outputs as a table: ``rewards``, ``explain``, ``rejections``,
    ``coverage``, ``flags`` (the trust evidence) or ``trust`` (each device's reputation)."""
    return _tessera.epoch_table(_os.fspath(lake), epoch, name)


def simulate(out: PathLike, seed: int = 7, drivers: int = 10, epochs: int = 2, start: str = "2026-W46", trips: int = 2, minutes: int = 10, camera: Optional[str] = None) -> Dict[str, Any]:
    """Write a deterministic synthetic fleet (``out/<device>/<files>`` and ``out/registry.csv``);
    the defaults reproduce the repository's ``data/sample`` (a mix of NMEA, BlackVue ``.gps``,
    GnssLogger and GPX loggers, and one CAMM camera). ``camera="camm"`` or ``"blackvue-mp4"``:
    every trip as that camera's MP4 (GNSS and a 10 Hz IMU consistent with the drive)."""
    return _json.loads(_tessera.simulate(_os.fspath(out), seed, drivers, epochs, start, trips, minutes, camera))


def render(lake: PathLike, epoch: str, output: Optional[PathLike] = None, color_by: str = "freshness", width: int = 1200, res: Optional[int] = None) -> Tuple[bytes, Dict[str, Any]]:
    """Draw an epoch's cells as a PNG map (what ``tessera render`` writes): coloured by
    ``freshness`` (epochs since last covered) or ``points``, with legend, scale bar and graticule.
    Returns ``(png_bytes, summary)``; with ``output`` the PNG is also written there (atomically).
    In a notebook: ``IPython.display.Image(tessera.render(lake, "2026-W47")[0])``."""
    png, summary = _tessera.render(_os.fspath(lake), epoch, color_by, width, res)
    if output is not None:
        out = _os.fspath(output)
        tmp = out + ".tmp"
        with open(tmp, "wb") as f:
            f.write(png)
            f.flush()
            _os.fsync(f.fileno())
        _os.replace(tmp, out)
    return png, _json.loads(summary)


def default_policy() -> str:
    """Policy v1 as TOML text."""
    return _tessera.default_policy()
