"""Median, spread and ratios of pgbench runs: reads lines 'label tps' on stdin."""
import statistics
import sys
from collections import defaultdict

runs = defaultdict(list)
for line in sys.stdin:
    label, tps = line.split()
    runs[label].append(float(tps))
med = {k: statistics.median(v) for k, v in runs.items()}
for k, v in runs.items():
    print(f"{k:<28} median {med[k]:9.0f} tps  spread {min(v):.0f}-{max(v):.0f}  runs {len(v)}")
for spec in sys.argv[1:]:
    num, den, target = spec.split(":")
    if num in med and den in med:
        r = med[num] / med[den]
        print(f"ratio {num} / {den} = {r:.2f}x (target {target})")
