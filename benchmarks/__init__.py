"""Benchmarks of the relay engine, run with one command from the project's root:

    .venv/bin/python -m benchmarks            # every measure, about two minutes
    .venv/bin/python -m benchmarks --quick    # fewer repeats, for a look

Everything runs on loopback against a stand-in AbuseIPDB (a separate process, with a configurable
latency) answering a realistic check: 25 reports over a full categories page. Printed side by side:

- fan-out: one relay request for 1, 5, 20 and 50 observables (engine time, the sum of the same
  lookups one after another, and the ratio to one observable);
- overhead: CPU per /observe request in-process, against `handwritten.py`, a minimal plain-Python
  Flask relay doing the same work (same token check, same vendor calls, same CTIM, written out);
- cold start: a fresh interpreter importing the relay with the whole catalogue (time and peak
  RSS), against bare Flask;
- throughput: requests a second under gunicorn (2 workers) with the vendor at 0 ms;
- lint: `relay lint vendors`;
- scaling: engine CPU by answer size, and a spec's load time compiled or from the spec cache.

The last line printed is one JSON object with every figure (fanout_ratio_20, overhead_ratio,
cold_start_ratio, cold_start_rss_mb, lint_s, specs, ...). docs/performance.md keeps one run.
"""
