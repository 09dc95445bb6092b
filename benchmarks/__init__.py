"""Throughput benchmarks (``make bench``): speed claims live here, never in timed unit tests."""
