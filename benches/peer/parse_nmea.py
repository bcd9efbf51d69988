"""pynmea2 peer of tessera's NMEA parse: python parse_nmea.py FILE...  -> JSON {seconds, bytes, ok}

Parses every line with pynmea2.parse (checksum checked), counting sentences it accepts. One core.
"""
import json
import sys
import time

import pynmea2

data = [open(p, "rb").read().decode("ascii", "replace") for p in sys.argv[1:]]
t0 = time.perf_counter()
ok = 0
for text in data:
    for line in text.splitlines():
        if line.startswith("NMEA,"):  # GnssLogger framing
            line = line[5:line.rfind(",")]
        if line.startswith("["):  # BlackVue framing
            line = line[line.find("]") + 1:]
        try:
            pynmea2.parse(line, check=True)
            ok += 1
        except Exception:
            pass
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "bytes": sum(len(t) for t in data), "ok": ok}))
