"""3D reconstruction of a (de-occluded) face: shape from shading, UV textures, meshes, pictures.

The paper's Section 5.4: the fitted 3DMM refined by shape from shading (:mod:`.sfs`, with the
gradient integration of :mod:`.integrate`), meshed per pixel (:mod:`.mesh`), the photo
unwrapped into the model's UV map (:mod:`.uv`, :mod:`.texture`), pictures of the meshes
(:mod:`.mesh_view`) and the files ``deocc-infer --mesh`` writes (:mod:`.export`).
"""

from deocc_core.recon.export import FaceMeshes, MeshConfig, reconstruct_face, write_face_meshes
from deocc_core.recon.integrate import (
    depth_gradients,
    gradients_from_normals,
    grid_graph,
    integrate_gradients,
    normals_from_gradients,
    poisson_dct,
    poisson_dct_solver,
)
from deocc_core.recon.mesh import DepthMesh, depth_mesh, unproject
from deocc_core.recon.mesh_view import MeshView, mesh_view, render_mesh
from deocc_core.recon.sfs import FaceDetail, SfSConfig, SfSResult, refine_face, shape_from_shading
from deocc_core.recon.texture import UVTexture, pull_push_fill, uv_texture
from deocc_core.recon.uv import load_uv

__all__ = [
    "MeshConfig",
    "FaceMeshes",
    "reconstruct_face",
    "write_face_meshes",
    "grid_graph",
    "depth_gradients",
    "gradients_from_normals",
    "normals_from_gradients",
    "integrate_gradients",
    "poisson_dct",
    "poisson_dct_solver",
    "DepthMesh",
    "depth_mesh",
    "unproject",
    "MeshView",
    "mesh_view",
    "render_mesh",
    "SfSConfig",
    "SfSResult",
    "FaceDetail",
    "shape_from_shading",
    "refine_face",
    "UVTexture",
    "uv_texture",
    "pull_push_fill",
    "load_uv",
]
