"""MTCNN (features/mtcnn.py): faces and landmarks on scikit-image's photographs, pinned to facenet-pytorch's own
detector on the same images."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

import numpy as np
import pytest
import torch
from skimage import data

from musefusion.errors import MissingDataError
from musefusion.features import mtcnn

#: The astronaut's face (brow to chin, cheek to cheek) in the 512x512 image, checked by eye on a drawn box.
FACE_BOX = (175, 55, 270, 175)

#: scikit-image's photographs, as RGB: two with one face each, two without a human face.
IMAGES = {"astronaut": data.astronaut, "camera": lambda: np.repeat(data.camera()[..., None], 3, axis=2),
          "coffee": data.coffee, "chelsea": data.chelsea}


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def nets():
    return mtcnn.load_mtcnn()


def test_finds_the_astronaut_face(nets):
    boxes, marks = mtcnn.detect_faces(data.astronaut(), nets)
    assert len(boxes) == 1 and boxes[0, 4] > 0.9
    assert iou(boxes[0, :4], FACE_BOX) > 0.5
    left_eye, right_eye, nose = marks[0, 0], marks[0, 1], marks[0, 2]
    assert left_eye[0] < nose[0] < right_eye[0] and nose[1] > left_eye[1]


def test_finds_nothing_in_a_black_frame(nets):
    boxes, marks = mtcnn.detect_faces(np.zeros((240, 320, 3), np.uint8), nets)
    assert boxes.shape == (0, 5) and marks.shape == (0, 5, 2)


def test_nms_union_and_min():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [2, 2, 6, 6]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    assert mtcnn.nms(boxes, scores, 0.5).tolist() == [3, 0, 2]
    assert mtcnn.nms(boxes, scores, 0.5, mode="min").tolist() == [3, 2]  # the small box lies inside both


def test_weights_folder_must_hold_the_nets(tmp_path):
    with pytest.raises(MissingDataError, match="pnet.pt' not found"):
        mtcnn.load_mtcnn(tmp_path)


def _brute_force_batched_nms(boxes, scores, idxs, threshold):
    """torchvision.ops.batched_nms written out pair by pair (IoU without the +1 pixel, per index)."""
    keep: list[int] = []
    for i in sorted(range(len(scores)), key=lambda k: -float(scores[k])):
        if all(int(idxs[i]) != int(idxs[j]) or iou(boxes[i].tolist(), boxes[j].tolist()) <= threshold
               for j in keep):
            keep.append(i)
    return torch.as_tensor(keep, dtype=torch.long)


@pytest.fixture(scope="module")
def facenet_mtcnn():
    """facenet-pytorch's MTCNN, with its weights (the same files as ours).

    facenet-pytorch imports torchvision for ``batched_nms`` alone (and ``to_tensor``, which detection does not
    use). Where torchvision does not load beside this torch (PyPI's torchvision wheel does not fit the CPU build
    of torch 2.13: 'operator torchvision::nms does not exist'), a brute-force ``batched_nms`` stands in for it,
    so everything else of the reference (pyramid, stages, box regression, landmarks) is facenet-pytorch's own.
    """
    if importlib.util.find_spec("facenet_pytorch") is None:
        pytest.skip("facenet-pytorch is not installed (make venv installs it)")
    before = set(sys.modules)
    try:
        importlib.import_module("torchvision.ops")
    except Exception:  # noqa: BLE001 - any import failure of torchvision: use the stand-in
        for name in [m for m in sys.modules if m.split(".")[0] in ("torchvision", "facenet_pytorch")]:
            del sys.modules[name]
        tv = types.ModuleType("torchvision")
        tv.ops = types.ModuleType("torchvision.ops")
        tv.ops.boxes = types.ModuleType("torchvision.ops.boxes")
        tv.ops.boxes.batched_nms = _brute_force_batched_nms
        tv.transforms = types.ModuleType("torchvision.transforms")
        tv.transforms.functional = types.ModuleType("torchvision.transforms.functional")
        sys.modules.update({"torchvision": tv, "torchvision.ops": tv.ops, "torchvision.ops.boxes": tv.ops.boxes,
                            "torchvision.transforms": tv.transforms,
                            "torchvision.transforms.functional": tv.transforms.functional})
    try:
        from facenet_pytorch.models.mtcnn import MTCNN

        yield MTCNN(keep_all=True, device="cpu", min_face_size=40, thresholds=list(mtcnn.MTCNN_THRESHOLDS),
                    factor=mtcnn.MTCNN_FACTOR)
    finally:  # forget the reference (and the stand-in), so no other test imports them by accident
        for name in set(sys.modules) - before:
            if name.split(".")[0] in ("torchvision", "facenet_pytorch"):
                del sys.modules[name]


@pytest.mark.parametrize("name", list(IMAGES))
def test_boxes_and_landmarks_match_facenet_pytorch(nets, facenet_mtcnn, name):
    img = IMAGES[name]()
    assert max(img.shape[:2]) <= mtcnn.DETECT_MAX_SIDE_PX  # no shrinking: the same pixels go to both
    ref_boxes, ref_probs, ref_marks = facenet_mtcnn.detect(img, landmarks=True)
    boxes, marks = mtcnn.detect_faces(img, nets)
    if ref_boxes is None:
        assert len(boxes) == 0
        return
    ref_boxes, ref_marks = np.asarray(ref_boxes, float), np.asarray(ref_marks, float)
    assert len(boxes) == len(ref_boxes) == 1
    # ours resizes with antialiased bilinear instead of "area" (module docstring): a pixel or two apart
    assert np.abs(boxes[0, :4] - ref_boxes[0]).max() < 3.0
    assert iou(boxes[0, :4], ref_boxes[0]) > 0.9
    assert np.abs(marks[0] - ref_marks[0]).max() < 2.5
    assert abs(boxes[0, 4] - float(ref_probs[0])) < 0.01
