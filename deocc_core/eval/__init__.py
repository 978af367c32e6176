"""Evaluation: metrics, baselines, tables per region / class, HTML report."""
