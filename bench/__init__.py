"""Benchmarks: each module is runnable (`python -m bench.<name>`), prints its figures and writes
bench/results/<name>.json to compare run to run."""
