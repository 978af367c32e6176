"""occluders."""
