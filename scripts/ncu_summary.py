#!/usr/bin/env python3
"""Sum Nsight Compute kernel times by kernel name.

  ncu_summary.py REPORT.csv [--top N]

REPORT.csv is `ncu -i X.ncu-rep --csv --page raw --print-units base` output with the metric
gpu__time_duration.sum (ns). Prints total ms, the share of the whole, the count and the mean us
per kernel name, largest first; kernels are grouped by name, so a name that several shapes share
shows their sum.
"""
import csv
import sys
from collections import defaultdict


def main():
    path = sys.argv[1]
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 30
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    head = next((i for i, r in enumerate(rows) if "Kernel Name" in r), None)
    if head is None:
        print(f"{path}: no kernel rows")
        return 1
    cols = rows[head]
    name_i, t_i = cols.index("Kernel Name"), cols.index("gpu__time_duration.sum")
    total = defaultdict(float)
    count = defaultdict(int)
    for r in rows[head + 1:]:
        if len(r) <= max(name_i, t_i):
            continue
        try:
            t = float(r[t_i].replace(",", ""))
        except ValueError:  # the units row
            continue
        total[r[name_i]] += t
        count[r[name_i]] += 1
    whole = sum(total.values())
    print(f"{len(total)} kernel names, {sum(count.values())} launches, {whole / 1e6:.2f} ms of kernel time")
    print(f"{'ms':>9} {'share':>6} {'count':>6} {'mean us':>9}  name")
    for name, t in sorted(total.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{t / 1e6:9.3f} {100 * t / whole:5.1f}% {count[name]:6d} {t / count[name] / 1e3:9.2f}  {name[:90]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
