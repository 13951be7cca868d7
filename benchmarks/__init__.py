# Copyright (c) 2026 The irsam authors. Licensed under the Apache License, Version 2.0.
"""Benchmark scripts (``python benchmarks/benchmark.py``, ``benchmarks/gpu.sh``); figures live in
``benchmarks/RESULTS.md``."""
