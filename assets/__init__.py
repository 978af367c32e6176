"""Data files deocc generates and ships (the starter model); no code."""
