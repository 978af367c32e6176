"""Training: config, losses, the trainer's checkpoint state, the two-stage trainer."""

from deocc_core.train.config import TrainConfig
from deocc_core.train.trainer import TrainResult, train, weights_sha256

__all__ = ["TrainConfig", "TrainResult", "train", "weights_sha256"]
