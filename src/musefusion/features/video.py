"""Visual features on the 500 ms grid: MTCNN face detection + 5-point alignment, then VGG-Face (PyTorch).

- MTCNN: Zhang et al., 2016, "Joint Face Detection and Alignment using Multitask Cascaded Convolutional
  Networks", IEEE SPL, doi:10.1109/LSP.2016.2603342. P-Net, R-Net and O-Net are re-written here on plain torch
  tensors (no torchvision) with the parameter names of facenet-pytorch, whose wheel ships the weights
  (``facenet_pytorch/data/{pnet,rnet,onet}.pt``; the package itself is never imported).
- VGG-Face: Parkhi, Vedaldi and Zisserman, 2015, "Deep Face Recognition", BMVC (the VGG16 layout trained on
  2.6 M faces). The 512-d feature is the global average of the last convolution block (ReLU(conv5_3), 14x14x512
  for a 224x224 face); fc6/fc7 are 4096-d and are not used.

.. _MTCNN: https://arxiv.org/abs/1604.02878
.. _VGG-Face: https://www.robots.ox.ac.uk/~vgg/publications/2015/Parkhi15/
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from musefusion.errors import MissingDependencyError
from musefusion.features import media
from musefusion.features.align import step_grid
from musefusion.features.audio import load_network, resolve_weights

logger = logging.getLogger(__name__)

#: Environment variable naming the VGG-Face weights file when --vggface-weights is not given.
VGGFACE_WEIGHTS_ENV = "MUSEFUSION_VGGFACE_WEIGHTS"
VGGFACE_HINT = (f"Pass --vggface-weights FILE or set ${VGGFACE_WEIGHTS_ENV}; a working file is the PyTorch "
                "conversion 'vgg_face_dag.pth' of the Oxford VGG-Face model (see docs/extraction.md).")
MTCNN_HINT = ("MTCNN weights come with facenet-pytorch: pip install --no-deps facenet-pytorch==2.6.0, or pass "
              "--mtcnn-weights DIR holding pnet.pt, rnet.pt and onet.pt.")
#: VGG-Face input: 224x224 RGB in 0-255 minus the training mean (vgg_face_dag's ``meta``).
VGGFACE_SIZE = 224
VGGFACE_MEAN_RGB = (129.186279296875, 104.76238250732422, 93.59396362304688)
#: Five-point template (left eye, right eye, nose, left/right mouth corner) of the 112x112 ArcFace crop
#: (Deng et al., 2019), scaled so the face spans ~75 % of the 224x224 VGG-Face input: VGG-Face was trained on
#: loose crops that keep hair and chin.
_TEMPLATE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
                          [70.7299, 92.2041]])
FACE_TEMPLATE = (_TEMPLATE_112 / 112.0 - 0.5) * 0.75 * VGGFACE_SIZE + VGGFACE_SIZE / 2
#: MTCNN defaults (facenet-pytorch / the original paper's code).
MTCNN_THRESHOLDS = (0.6, 0.7, 0.7)
MTCNN_FACTOR = 0.709
#: Frames are shrunk so their longer side is at most this before detection (speed); boxes are scaled back.
DETECT_MAX_SIDE_PX = 640


def _torch() -> Any:
    import torch

    return torch


# ----------------------------------------------------------------------------------------------- networks


def build_mtcnn() -> dict[str, Any]:
    """P-Net, R-Net and O-Net (random init), with facenet-pytorch's parameter names."""
    from musefusion.features.networks import ONet, PNet, RNet  # torch-based: imported when a network is built

    return {"pnet": PNet().eval(), "rnet": RNet().eval(), "onet": ONet().eval()}


def default_mtcnn_dir() -> Path | None:
    """facenet-pytorch's ``data`` folder, located without importing the package (it needs torchvision)."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def load_mtcnn(folder: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Build MTCNN and load ``pnet.pt``, ``rnet.pt``, ``onet.pt`` from ``folder`` (default: facenet-pytorch's).

    Raises:
        MissingDependencyError: no folder given and facenet-pytorch is not installed.
        MissingDataError: a weights file is missing.
        CheckpointError: a weights file holds pickled code or does not fit.
    """
    if folder is None:
        folder = default_mtcnn_dir()
        if folder is None:
            raise MissingDependencyError(MTCNN_HINT)
    nets = build_mtcnn()
    for name, net in nets.items():
        load_network(net, Path(folder) / f"{name}.pt", f"MTCNN {name}", MTCNN_HINT)
    return nets


def build_vggface() -> Any:
    """VGG-Face's convolutional part (VGG16 conv1_1..conv5_3; random init) -> 512-d pooled conv5_3.

    Parameter names follow the ``vgg_face_dag.pth`` conversion (``conv1_1.weight`` ...); its ``fc6``-``fc8``
    entries are ignored when loading.
    """
    torch = _torch()
    from musefusion.features.networks import VGGFace  # torch-based: imported when a network is built

    return VGGFace().to(memory_format=torch.channels_last).eval()  # type: ignore[call-overload]  # torch's stub


def load_vggface(path: str | os.PathLike[str] | None = None) -> Any:
    """Build VGG-Face and load its weights from ``path`` (or ``$MUSEFUSION_VGGFACE_WEIGHTS``).

    Raises:
        MissingDataError: no weights file given, or it does not exist.
        CheckpointError: the file holds pickled code or does not fit the network.
    """
    file = resolve_weights(path, VGGFACE_WEIGHTS_ENV, "VGG-Face", VGGFACE_HINT)
    return load_network(build_vggface(), file, "VGG-Face", VGGFACE_HINT, ignore_prefixes=("fc",))


# ----------------------------------------------------------------------------------------------- MTCNN


def nms(boxes: Any, scores: Any, threshold: float, mode: str = "union") -> Any:
    """Greedy non-maximum suppression on ``(n, 4)`` x1,y1,x2,y2 boxes; returns kept indices (best first).

    ``mode="min"`` divides the overlap by the smaller box (MTCNN's last stage), else by the union.
    """
    torch = _torch()
    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.long)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = torch.argsort(scores, descending=True)
    keep = []
    while len(order):
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest]) + 1).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest]) + 1).clamp(min=0)
        inter = w * h
        denom = torch.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        order = rest[inter / denom <= threshold]
    return torch.as_tensor(keep, dtype=torch.long)


def _square(boxes: Any) -> Any:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = _torch().maximum(w, h)
    out = boxes.clone()
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2:4] = out[:, :2] + side[:, None]
    return out


def _regress(boxes: Any, reg: Any, inclusive: bool = True) -> Any:
    """Apply the networks' box offsets (relative to the box size; P-Net's stage uses exclusive sizes)."""
    w = boxes[:, 2] - boxes[:, 0] + (1 if inclusive else 0)
    h = boxes[:, 3] - boxes[:, 1] + (1 if inclusive else 0)
    out = boxes.clone()
    out[:, :4] = boxes[:, :4] + reg[:, :4] * _torch().stack([w, h, w, h], dim=1)
    return out


def _resize(img: Any, size: tuple[int, int]) -> Any:
    """Antialiased bilinear resize: close to the area resampling MTCNN was trained with, ~100x faster on CPU
    than torch's ``mode="area"`` for non-integer ratios."""
    return _torch().nn.functional.interpolate(img, size=size, mode="bilinear", antialias=True, align_corners=False)


def _crops(img: Any, boxes: Any, size: int) -> Any:
    """Crop each box (clipped to the image, 1-based as in MTCNN's code) and resize to ``size`` (area)."""
    torch = _torch()
    h, w = img.shape[2:]
    b = boxes[:, :4].trunc().int().tolist()
    out = []
    for x1, y1, x2, y2 in b:
        x1, y1, x2, y2 = max(x1, 1), max(y1, 1), min(x2, w), min(y2, h)
        patch = img[:, :, y1 - 1:y2, x1 - 1:x2] if (y2 > y1 - 1 and x2 > x1 - 1) else img[:, :, :1, :1]
        out.append(_resize(patch, (size, size)))
    return (torch.cat(out) - 127.5) * 0.0078125


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one thread: MTCNN's many tiny convolutions gain nothing from more, and OpenMP's
    spinning threads make them 10-30x slower when the cores are shared (measured on 2 busy cores)."""
    torch = _torch()
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def detect_faces(frame: np.ndarray, nets: dict[str, Any], min_face_px: int = 40,
                 thresholds: tuple[float, float, float] = MTCNN_THRESHOLDS,
                 factor: float = MTCNN_FACTOR) -> tuple[np.ndarray, np.ndarray]:
    """MTCNN on one RGB frame.

    Args:
        frame: uint8 ``(height, width, 3)`` RGB.
        nets: :func:`load_mtcnn` output.
        min_face_px: smallest face searched for (pixels of ``frame``).
        thresholds: P-/R-/O-Net face probability thresholds.
        factor: image pyramid scale step.

    Returns:
        ``(boxes, landmarks)``: float32 ``(n, 5)`` (x1, y1, x2, y2, probability) and ``(n, 5, 2)`` (x, y of
        left eye, right eye, nose, left and right mouth corner), in ``frame`` pixels.
    """
    torch = _torch()
    empty = (np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32))
    shrink = min(1.0, DETECT_MAX_SIDE_PX / max(frame.shape[:2]))
    with torch.inference_mode(), _one_thread():
        img = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float()
        if shrink < 1.0:
            img = _resize(img, (int(round(img.shape[2] * shrink)), int(round(img.shape[3] * shrink))))
        h, w = img.shape[2:]
        m = 12.0 / max(min_face_px * shrink, 12.0)
        scales: list[float] = []
        minl = min(h, w) * m
        while minl >= 12:
            scales.append(m * factor ** len(scales))
            minl *= factor
        # stage 1: P-Net over the pyramid
        cands = []
        for s in scales:
            im = (_resize(img, (int(h * s + 1), int(w * s + 1))) - 127.5) * 0.0078125
            reg, prob = nets["pnet"](im)
            mask = prob[0] >= thresholds[0]
            if not mask.any():
                continue
            yx = mask.nonzero().float()
            score = prob[0][mask]
            offs = reg[0][:, mask].T
            q1 = ((2 * yx.flip(1) + 1) / s).floor()
            q2 = ((2 * yx.flip(1) + 12) / s).floor()
            boxes = torch.cat([q1, q2, score[:, None], offs], dim=1)
            cands.append(boxes[nms(boxes[:, :4], boxes[:, 4], 0.5)])
        if not cands:
            return empty
        boxes = torch.cat(cands)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        boxes = _square(_regress(boxes[:, :5], boxes[:, 5:9], inclusive=False))
        # stage 2: R-Net refines
        reg, prob = nets["rnet"](_crops(img, boxes, 24))
        keep = prob > thresholds[1]
        boxes = torch.cat([boxes[keep, :4], prob[keep, None]], dim=1)
        reg = reg[keep]
        if not len(boxes):
            return empty
        pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
        boxes = _square(_regress(boxes[pick], reg[pick]))
        # stage 3: O-Net gives the final boxes and five landmarks
        reg, marks, prob = nets["onet"](_crops(img, boxes, 48))
        keep = prob > thresholds[2]
        boxes = torch.cat([boxes[keep, :4], prob[keep, None]], dim=1)
        reg, marks = reg[keep], marks[keep]
        if not len(boxes):
            return empty
        bw = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        bh = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        pts = torch.stack([bw * marks[:, :5] + boxes[:, :1] - 1, bh * marks[:, 5:] + boxes[:, 1:2] - 1], dim=2)
        boxes = _regress(boxes, reg)
        pick = nms(boxes[:, :4], boxes[:, 4], 0.7, mode="min")
        boxes, pts = boxes[pick], pts[pick]
        boxes[:, :4] /= shrink
        pts /= shrink
    return boxes.numpy().astype(np.float32), pts.numpy().astype(np.float32)


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
    torch = _torch()
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
    torch = _torch()
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


__all__ = ["align_face", "build_mtcnn", "build_vggface", "detect_faces",
           "extract_vggface", "load_mtcnn", "load_vggface", "nms", "similarity_transform"]
