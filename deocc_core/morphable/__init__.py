"""morphable."""
