"""Occluders: the six classes, procedural makers, real-asset packs, compositing, regions."""
