"""Streaming shard dataset for training and evaluation, paired augmentation."""

from deocc_core.data.augment import AugmentConfig, augment_pair
from deocc_core.data.dataset import ShardDataset

__all__ = ["ShardDataset", "AugmentConfig", "augment_pair"]
