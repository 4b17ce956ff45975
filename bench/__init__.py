"""Benchmarks behind ``atende bench``: each prints one JSON object. They are measurements, not tests."""
