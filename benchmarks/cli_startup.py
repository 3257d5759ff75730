"""`bigmodel --help` wall time against `python -c pass`, measured in one run.

Target: under 0.3 s of its own with the three sectors installed. Prints the medians, the
difference and the ratio, and which sector plugins were loaded.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

RUNS = 15


def wall(cmd: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    sectors = json.loads(subprocess.run([sys.executable, "-m", "bigmodel.cli", "sector", "list", "--json"],
                                        check=True, capture_output=True, text=True).stdout)
    base = wall([sys.executable, "-c", "pass"])
    help_ = wall([sys.executable, "-m", "bigmodel.cli", "--help"])
    print(f"sectors installed: {', '.join(s['name'] for s in sectors) or 'none'}")
    print(f"python -c pass   : {base * 1000:7.1f} ms (median of {RUNS})")
    print(f"bigmodel --help  : {help_ * 1000:7.1f} ms (median of {RUNS})")
    print(f"bigmodel's own   : {(help_ - base) * 1000:7.1f} ms  (target < 300 ms)")
    print(f"ratio            : {help_ / base:.2f}x python start-up")


if __name__ == "__main__":
    main()
