"""Benchmarks, run by hand: ``python -m bench`` prints a table and writes it to ``bench/results/``."""
