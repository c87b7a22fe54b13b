"""python -m benchmarks [--quick] [--only NAME,...]: every benchmark, side by side, then one JSON line."""
from __future__ import annotations

import argparse
import sys

from benchmarks import coldstart, fanout, lint, overhead, scaling, throughput
from benchmarks.common import as_json, machine

BENCHMARKS = {
    "fanout": (fanout, {"repeats": 5}, {"repeats": 2}),
    "overhead": (overhead, {"rounds": 9, "requests_per_round": 40}, {"rounds": 3, "requests_per_round": 10}),
    "coldstart": (coldstart, {"repeats": 9}, {"repeats": 3}),
    "throughput": (throughput, {"seconds": 5.0}, {"seconds": 2.0}),
    "lint": (lint, {"repeats": 3}, {"repeats": 1}),
    "scaling": (scaling, {"requests": 40, "repeats": 5}, {"requests": 5, "repeats": 1}),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats: a look, not figures to keep")
    parser.add_argument("--only", help="comma-separated: " + ", ".join(BENCHMARKS))
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",")] if args.only else list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    print(f"Machine: {machine()}", flush=True)
    figures = {}
    for name in chosen:
        module, full, quick = BENCHMARKS[name]
        found = module.run(**(quick if args.quick else full))
        figures.update(found)
        print("\n" + "\n".join(module.report(found)), flush=True)
    print(as_json(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
