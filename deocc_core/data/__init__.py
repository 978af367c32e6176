"""Streaming shard dataset for training and evaluation."""
