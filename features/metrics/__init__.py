"""Metrics: turns, latency and tokens on a Prometheus ``/metrics`` endpoint."""
