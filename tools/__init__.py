"""Console scripts (thin typer CLIs over deocc_core) and benchmarks."""
