"""Plain PyTorch float64 references of every kernel op, used by the tests and benchmarks."""
