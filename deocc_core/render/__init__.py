"""Rendering: Z-buffer rasterizer, SH shading, face render (image + mask M), OBJ export."""
from deocc_core.render.face import RenderResult, render_face
from deocc_core.render.obj import read_obj, write_obj
from deocc_core.render.raster import Raster, rasterize

__all__ = ["Raster", "rasterize", "RenderResult", "render_face", "write_obj", "read_obj"]
