"""Benchmarks of the pipeline on data outside the library (run from the repository root, ``python -m benchmarks.<name>``)."""
