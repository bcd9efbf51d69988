"""``python -m tessera.spark epoch run --lake L --epoch E [--pool N] [--registry R] [--policy P]
[--master URL]``: an epoch computed on Spark, published byte for byte as ``tessera epoch run``
would. Prints the summary as JSON."""

from __future__ import annotations

import argparse
import json
import sys


def _int_in(lo, hi, what):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer ({what})") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{v} is outside {lo}..{hi} ({what})")
        return v

    return parse


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tessera.spark", description=__doc__)
    sub = ap.add_subparsers(dest="group", required=True)
    ep = sub.add_parser("epoch", help="epochs").add_subparsers(dest="command", required=True)
    run = ep.add_parser("run", help="compute and publish an epoch on Spark")
    run.add_argument("--lake", required=True)
    run.add_argument("--epoch", required=True)
    run.add_argument(
        "--pool", type=_int_in(0, 10**38 - 1, "base units"), help="base units (default: the policy's [emission])"
    )
    run.add_argument("--registry", help="device registry CSV (default: LAKE/registry.csv)")
    run.add_argument("--policy", help="policy TOML (default: a published epoch's own, else policy v1)")
    run.add_argument("--master", help="Spark master URL (default: spark-submit's, else local[*])")
    run.add_argument(
        "--bucket-res", type=_int_in(0, 15, "an H3 resolution"), default=None, help="H3 resolution of the buckets"
    )
    run.add_argument(
        "--partitions", type=_int_in(1, 1 << 20, "partitions"), help="partitions of the source and prior scans"
    )
    run.add_argument("--replace", action="store_true")
    run.add_argument("--no-prior", action="store_true")
    a = ap.parse_args(argv)

    from pyspark.sql import SparkSession

    from tessera import TesseraError
    from tessera.spark import DEFAULT_BUCKET_RES, run_epoch

    b = SparkSession.builder.appName(f"tessera epoch {a.epoch}").config("spark.ui.enabled", "false").config(
        "spark.ui.showConsoleProgress", "false"
    )
    if a.master:
        b = b.master(a.master)
    spark = b.getOrCreate()
    try:
        s = run_epoch(
            spark,
            a.lake,
            a.epoch,
            a.pool,
            a.registry,
            a.policy,
            replace=a.replace,
            no_prior=a.no_prior,
            bucket_res=DEFAULT_BUCKET_RES if a.bucket_res is None else a.bucket_res,
            partitions=a.partitions,
        )
    except TesseraError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        spark.stop()
    for k in ("pool", "allocated"):
        s[k] = str(s[k])
    for r in s.get("top", []):
        r["amount"] = str(r["amount"])
    print(json.dumps(s, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
