"""The benchmark harness: forward, train step, input pipeline, TFLite and peers in one run.

Every figure of a report is measured in the same process and run, against this machine's
own matmul peak (``peak.py``), so ratios between them are meaningful. ``harness.py`` runs
everything; ``scripts/benchmark.py`` is its command line.
"""
