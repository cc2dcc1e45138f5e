"""MTCNN face detection (Zhang et al., 2016, "Joint Face Detection and Alignment using Multitask Cascaded
Convolutional Networks", IEEE SPL, doi:10.1109/LSP.2016.2603342) on plain torch tensors, without torchvision.

P-Net proposes boxes over an image pyramid, R-Net refines them, O-Net gives the final boxes and five landmarks.
The networks carry facenet-pytorch's parameter names, whose wheel ships the weights
(``facenet_pytorch/data/{pnet,rnet,onet}.pt``); that package needs torchvision and is never imported here.
``tests/features/test_mtcnn.py`` pins the detector to facenet-pytorch's own on the same image.

Where this differs from facenet-pytorch, on purpose: the pyramid and crops are resized with antialiased bilinear
interpolation instead of ``mode="area"`` (about 100x faster on CPU for non-integer ratios, boxes within a pixel or
two), and frames are shrunk to at most :data:`DETECT_MAX_SIDE_PX` on their longer side before detection.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from musefusion.errors import MissingDependencyError
from musefusion.features.audio import load_network

MTCNN_HINT = ("MTCNN weights come with facenet-pytorch: pip install --no-deps facenet-pytorch==2.6.0, or pass "
              "--mtcnn-weights DIR holding pnet.pt, rnet.pt and onet.pt.")
#: MTCNN defaults (facenet-pytorch / the original paper's code).
MTCNN_THRESHOLDS = (0.6, 0.7, 0.7)
MTCNN_FACTOR = 0.709
#: Frames are shrunk so their longer side is at most this before detection (speed); boxes are scaled back.
DETECT_MAX_SIDE_PX = 640


# ----------------------------------------------------------------------------------------------- networks


class PNet(nn.Module):
    """MTCNN's proposal network."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(1, 3, h, w)`` -> box offsets ``(1, 4, h', w')``, face probability ``(1, h', w')``."""
        x = nn.functional.max_pool2d(self.prelu1(self.conv1(x)), 2, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)[:, 1]


class RNet(nn.Module):
    """MTCNN's refinement network."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(n, 3, 24, 24)`` -> offsets ``(n, 4)``, probability ``(n,)``."""
        mp = nn.functional.max_pool2d
        x = mp(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = mp(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(x)).permute(0, 3, 2, 1).reshape(x.shape[0], -1)  # Caffe's (w, h) order
        x = self.prelu4(self.dense4(x))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)[:, 1]


class ONet(nn.Module):
    """MTCNN's output network (boxes, five landmarks, probability)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(n, 3, 48, 48)`` -> offsets ``(n, 4)``, landmarks ``(n, 10)`` (x1..x5, y1..y5), prob ``(n,)``."""
        mp = nn.functional.max_pool2d
        x = mp(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = mp(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = mp(self.prelu3(self.conv3(x)), 2, 2, ceil_mode=True)
        x = self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).reshape(x.shape[0], -1)
        x = self.prelu5(self.dense5(x))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)[:, 1]


def build_mtcnn() -> dict[str, Any]:
    """P-Net, R-Net and O-Net (random init), with facenet-pytorch's parameter names."""
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


# ----------------------------------------------------------------------------------------------- detection


def nms(boxes: Any, scores: Any, threshold: float, mode: str = "union") -> Any:
    """Greedy non-maximum suppression on ``(n, 4)`` x1,y1,x2,y2 boxes; returns kept indices (best first).

    ``mode="min"`` divides the overlap by the smaller box (MTCNN's last stage), else by the union.
    """
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
    side = torch.maximum(w, h)
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
    out[:, :4] = boxes[:, :4] + reg[:, :4] * torch.stack([w, h, w, h], dim=1)
    return out


def _resize(img: Any, size: tuple[int, int]) -> Any:
    """Antialiased bilinear resize: close to the area resampling MTCNN was trained with, ~100x faster on CPU
    than torch's ``mode="area"`` for non-integer ratios."""
    return torch.nn.functional.interpolate(img, size=size, mode="bilinear", antialias=True, align_corners=False)


def _crops(img: Any, boxes: Any, size: int) -> Any:
    """Crop each box (clipped to the image, 1-based as in MTCNN's code) and resize to ``size`` (area)."""
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
