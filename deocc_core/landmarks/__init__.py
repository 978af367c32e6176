"""68-point landmarks: the iBUG scheme, detectors (dlib, FAN) and annotation readers."""
