"""Benchmarks: each script prints JSON; run_all.py runs them all."""
