"""Inference: de-occlude faces in photos, paste back, mesh export, expression edits."""
