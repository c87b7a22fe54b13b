"""The stand-in AbuseIPDB, run as its own process: `python -m benchmarks.vendor [--latency S]`.

Prints its origin on the first line, then serves until terminated."""
from __future__ import annotations

import argparse
import threading

from benchmarks.data import categories_page, check_answer
from engine.commands.standin import CannedAnswer, Route, StandInVendor


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--reports", type=int, default=25, help="reports in each check answer")
    args = parser.parse_args()
    routes = [Route("/api/v2/check", CannedAnswer(200, check_answer(args.reports), delay=args.latency)),
              Route("/categories", CannedAnswer(200, categories_page(), "text/html", delay=args.latency))]
    vendor = StandInVendor(routes).start()
    print(vendor.origin, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
