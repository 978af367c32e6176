"""Networks (U-Net generator, strided-conv discriminators) and generator I/O."""

from deocc_core.nets.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from deocc_core.nets.io import (
    GeneratorResult,
    GeneratorSpec,
    generator_input,
    images_to_tensor,
    load_generator,
    prepare_generator,
    run_generator,
    tensor_to_images,
)
from deocc_core.nets.networks import (
    BLENDS,
    Discriminator,
    GeneratorOutput,
    UnetGenerator,
    blend_output,
    define_discriminator,
    define_generator,
    init_weights,
)

__all__ = [
    "UnetGenerator",
    "Discriminator",
    "define_generator",
    "define_discriminator",
    "init_weights",
    "BLENDS",
    "GeneratorOutput",
    "blend_output",
    "GeneratorSpec",
    "GeneratorResult",
    "images_to_tensor",
    "tensor_to_images",
    "generator_input",
    "run_generator",
    "prepare_generator",
    "load_generator",
    "save_checkpoint",
    "load_checkpoint",
    "find_checkpoint",
]
