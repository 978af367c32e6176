"""Networks: U-Net generator, strided-conv discriminators."""

from deocc_core.nets.networks import (
    Discriminator,
    UnetGenerator,
    define_discriminator,
    define_generator,
)

__all__ = ["UnetGenerator", "Discriminator", "define_generator", "define_discriminator"]
