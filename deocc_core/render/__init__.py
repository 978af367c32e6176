"""Rendering: Z-buffer rasterizer, SH shading, face render (image + mask M), OBJ export."""

from deocc_core.render.face import SKIN_GREY, RenderResult, render_face
from deocc_core.render.obj import read_obj, write_obj
from deocc_core.render.raster import Raster, interpolate, rasterize, vertex_visibility
from deocc_core.render.shading import (
    DEFAULT_SH,
    light_sh,
    random_light_sh,
    sh_basis,
    shade_sh,
    vertex_normals,
)

__all__ = [
    "Raster",
    "rasterize",
    "interpolate",
    "vertex_visibility",
    "vertex_normals",
    "sh_basis",
    "shade_sh",
    "light_sh",
    "random_light_sh",
    "DEFAULT_SH",
    "RenderResult",
    "render_face",
    "SKIN_GREY",
    "write_obj",
    "read_obj",
]
