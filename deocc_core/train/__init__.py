"""Training: config, losses, checkpoints, the two-stage trainer."""

from deocc_core.train.config import TrainConfig
from deocc_core.train.trainer import TrainResult, load_generator, train

__all__ = ["TrainConfig", "TrainResult", "train", "load_generator"]
