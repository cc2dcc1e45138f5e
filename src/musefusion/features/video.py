"""Visual features on the 500 ms grid: MTCNN face detection + 5-point alignment, then VGG-Face (PyTorch).

- MTCNN (``features/mtcnn.py``) finds the faces and their five landmarks; each face is aligned to a template.
- VGG-Face: Parkhi, Vedaldi and Zisserman, 2015, "Deep Face Recognition", BMVC (the VGG16 layout trained on
  2.6 M faces). The 512-d feature is the global average of the last convolution block (ReLU(conv5_3), 14x14x512
  for a 224x224 face); fc6/fc7 are 4096-d and are not used.

.. _MTCNN: https://arxiv.org/abs/1604.02878
.. _VGG-Face: https://www.robots.ox.ac.uk/~vgg/publications/2015/Parkhi15/
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musefusion.data.grid import step_grid
from musefusion.features import media
from musefusion.features.audio import load_network, resolve_weights
from musefusion.features.mtcnn import detect_faces
from musefusion.features.networks import VGGFace

logger = logging.getLogger(__name__)

#: Environment variable naming the VGG-Face weights file when --vggface-weights is not given.
VGGFACE_WEIGHTS_ENV = "MUSEFUSION_VGGFACE_WEIGHTS"
VGGFACE_HINT = (f"Pass --vggface-weights FILE or set ${VGGFACE_WEIGHTS_ENV}; a working file is the PyTorch "
                "conversion 'vgg_face_dag.pth' of the Oxford VGG-Face model (see docs/extraction.md).")
#: VGG-Face input: 224x224 RGB in 0-255 minus the training mean (vgg_face_dag's ``meta``).
VGGFACE_SIZE = 224
VGGFACE_MEAN_RGB = (129.186279296875, 104.76238250732422, 93.59396362304688)
#: Five-point template (left eye, right eye, nose, left/right mouth corner) of the 112x112 ArcFace crop
#: (Deng et al., 2019), scaled so the face spans ~75 % of the 224x224 VGG-Face input: VGG-Face was trained on
#: loose crops that keep hair and chin.
_TEMPLATE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
                          [70.7299, 92.2041]])
FACE_TEMPLATE = (_TEMPLATE_112 / 112.0 - 0.5) * 0.75 * VGGFACE_SIZE + VGGFACE_SIZE / 2


# ----------------------------------------------------------------------------------------------- networks


def build_vggface() -> Any:
    """VGG-Face's convolutional part (VGG16 conv1_1..conv5_3; random init) -> 512-d pooled conv5_3.

    Parameter names follow the ``vgg_face_dag.pth`` conversion (``conv1_1.weight`` ...); its ``fc6``-``fc8``
    entries are ignored when loading.
    """
    return VGGFace().to(memory_format=torch.channels_last).eval()  # type: ignore[call-overload]  # torch's stub


def load_vggface(path: str | os.PathLike[str] | None = None) -> Any:
    """Build VGG-Face and load its weights from ``path`` (or ``$MUSEFUSION_VGGFACE_WEIGHTS``).

    Raises:
        MissingDataError: no weights file given, or it does not exist.
        CheckpointError: the file holds pickled code or does not fit the network.
    """
    file = resolve_weights(path, VGGFACE_WEIGHTS_ENV, "VGG-Face", VGGFACE_HINT)
    return load_network(build_vggface(), file, "VGG-Face", VGGFACE_HINT, ignore_prefixes=("fc",))


# ----------------------------------------------------------------------------------------------- alignment


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping ``src`` points onto ``dst``
    (Umeyama, 1991).

    Returns:
        float64 ``(2, 3)`` matrix ``M`` with ``dst ~ M @ [x, y, 1]``.

    Examples:
        >>> pts = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
        >>> (np.round(similarity_transform(pts, 2 * pts + 3), 6) + 0.0).tolist()
        [[2.0, 0.0, 3.0], [0.0, 2.0, 3.0]]
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1
    rot = u @ np.diag(sign) @ vt
    scale = (sig * sign).sum() / s.var(0).sum()
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def align_face(frame: np.ndarray, landmarks: np.ndarray, size: int = VGGFACE_SIZE) -> np.ndarray:
    """Warp ``frame`` so the five ``landmarks`` land on :data:`FACE_TEMPLATE` (bilinear, zero outside).

    Returns:
        float32 ``(3, size, size)`` RGB in 0-255.
    """
    m = similarity_transform(landmarks, FACE_TEMPLATE * size / VGGFACE_SIZE)
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    src = inv @ np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    h, w = frame.shape[:2]
    grid = np.stack([(2 * src[0] + 1) / w - 1, (2 * src[1] + 1) / h - 1], axis=1).reshape(1, size, size, 2)
    img = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float()
    out = torch.nn.functional.grid_sample(img, torch.from_numpy(grid).float(), mode="bilinear",
                                          padding_mode="zeros", align_corners=False)
    return out[0].numpy()


# ----------------------------------------------------------------------------------------------- pipeline


def embed_faces(faces: np.ndarray, model: Any, bf16: bool = False) -> np.ndarray:
    """VGG-Face features of aligned faces ``(n, 3, 224, 224)`` (RGB 0-255) -> float32 ``(n, 512)``.

    ``bf16`` runs the convolutions in bfloat16 (CPU autocast): about 2x faster on CPUs with native bf16
    (AVX512-BF16/AMX), at ~3 significant digits; off by default so features do not depend on the hardware.
    """
    mean = torch.tensor(VGGFACE_MEAN_RGB).view(1, 3, 1, 1)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        x = (torch.from_numpy(faces) - mean).contiguous(memory_format=torch.channels_last)
        return model(x).float().numpy()


def extract_vggface(path: str | os.PathLike[str], mtcnn: dict[str, Any], model: Any, min_face_px: int = 40,
                    batch_size: int = 8, bf16: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """VGG-Face features of the largest face in the frame shown at each 500 ms step of a video.

    Args:
        path: the video file.
        mtcnn: :func:`load_mtcnn` output.
        model: :func:`load_vggface` output.
        min_face_px: smallest face searched for.
        batch_size: faces per VGG-Face forward pass.
        bf16: run VGG-Face in bfloat16 (see :func:`embed_faces`).

    Returns:
        ``(timestamps_ms, values, face_rate)``: int64 ``(T,)``, float32 ``(T, 512)`` with NaN rows where no
        face was found, and the share of steps with a face.

    Raises:
        MissingDataError: the file does not exist.
        DataFormatError: the file is empty, undecodable or has no video stream.
    """
    path = Path(path)
    grid = step_grid(media.media_duration_s(path))
    values = np.full((len(grid), 512), np.nan, dtype=np.float32)
    pending_idx: list[int] = []
    pending: list[np.ndarray] = []
    last_step = -1

    def flush() -> None:
        if pending:
            values[pending_idx] = embed_faces(np.stack(pending), model, bf16)
            pending.clear()
            pending_idx.clear()

    for k, frame in media.read_video_frames(path, grid / 1000.0):
        last_step = k
        boxes, marks = detect_faces(frame, mtcnn, min_face_px)
        if len(boxes):
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            pending.append(align_face(frame, marks[int(np.argmax(area))]))
            pending_idx.append(k)
            if len(pending) >= batch_size:
                flush()
    flush()
    grid, values = grid[:last_step + 1], values[:last_step + 1]  # steps past the last frame are not video
    face_rate = float((~np.isnan(values[:, 0])).mean()) if len(grid) else 0.0
    return grid, values, face_rate


__all__ = ["align_face", "build_vggface", "extract_vggface", "load_vggface", "similarity_transform"]
