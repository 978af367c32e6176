"""Is it still the same person? dlib's 128-d face descriptor on given landmarks.

dlib's ResNet face descriptor (``dlib_face_recognition_resnet_model_v1.dat`` from the
``face-recognition-models`` package; 99.38 % on LFW, trained without LFW): two faces whose
descriptors lie closer than :data:`SAME_PERSON` (0.6, dlib's threshold) are the same person.

The face chip is aligned from landmarks WE give (a ``full_object_detection`` built from the
iBUG-68 points), never from dlib's own landmark predictor: every method's output and the
ground truth of a sample are cut with the same landmarks, so only the pixels differ.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

from deocc_core.check import check_array

__all__ = ["SAME_PERSON", "face_descriptors", "descriptor_distance"]

SAME_PERSON = 0.6  # dlib's same-person threshold on the descriptor distance
DESCRIPTOR_SIZE = 128


@lru_cache(maxsize=1)
def _model():
    import dlib

    from deocc_core.landmarks.detect import dlib_model_dir

    path = dlib_model_dir() / "dlib_face_recognition_resnet_model_v1.dat"
    if not path.is_file():
        from deocc_core.errors import InputError

        raise InputError(f"{path}: missing; reinstall face-recognition-models")
    return dlib.face_recognition_model_v1(str(path))


def face_descriptors(
    images: npt.NDArray[np.uint8], landmarks: npt.NDArray[np.floating]
) -> npt.NDArray[np.float32]:
    """The 128-d dlib descriptor of each face, aligned on the given landmarks.

    Args:
        images: ``[N, H, W, 3]`` uint8 RGB (e.g. eval crops).
        landmarks: ``[N, 68, 2]`` iBUG-68 ``(x, y)`` pixels in each image (rounded to whole
            pixels, dlib's points are integers).

    Returns:
        ``[N, 128]`` float32 descriptors (unit-length-ish; compare with
        :func:`descriptor_distance`).

    Example:
        >>> from deocc_core.morphable.model import load_model
        >>> m = load_model("starter")
        >>> lm = (m.mean[m.landmarks68, :2] * [0.4, -0.4] + 64)[None].astype(np.float32)
        >>> img = np.full((1, 128, 128, 3), 150, np.uint8)
        >>> face_descriptors(img, lm).shape
        (1, 128)
    """
    import dlib

    imgs = check_array(np.asarray(images), "images", (None, None, None, 3), np.uint8)
    lm = check_array(np.asarray(landmarks, np.float64), "landmarks", (len(imgs), 68, 2))
    if not len(imgs):
        return np.zeros((0, DESCRIPTOR_SIZE), np.float32)
    batch_img, batch_faces = [], []
    for img, pts in zip(imgs, np.rint(lm).astype(int), strict=True):
        x0, y0 = pts.min(0)
        x1, y1 = pts.max(0)
        shape = dlib.full_object_detection(
            dlib.rectangle(int(x0), int(y0), int(x1), int(y1)),
            [dlib.point(int(x), int(y)) for x, y in pts],
        )
        faces = dlib.full_object_detections()
        faces.append(shape)
        batch_img.append(np.ascontiguousarray(img))
        batch_faces.append(faces)
    out = _model().compute_face_descriptor(batch_img, batch_faces)
    return np.array([np.array(d[0]) for d in out], np.float32).reshape(-1, DESCRIPTOR_SIZE)


def descriptor_distance(
    a: npt.NDArray[np.floating], b: npt.NDArray[np.floating]
) -> npt.NDArray[np.float32]:
    """Euclidean distance between descriptor rows ``[N, 128]`` (same person: < 0.6).

    Example:
        >>> a = np.zeros((2, 128), np.float32); b = a.copy(); b[1, 0] = 0.5
        >>> descriptor_distance(a, b).tolist()
        [0.0, 0.5]
    """
    return np.linalg.norm(np.asarray(a, np.float32) - np.asarray(b, np.float32), axis=-1)
