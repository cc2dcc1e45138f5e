"""The pretrained networks of feature extraction, as module-level classes whose parameter names match the
published weight files: VGGish (torchvggish's ``vggish-10086976.pth``) and VGG-Face's convolutional part
(``vgg_face_dag.pth``). MTCNN's P/R/O-Net live with their detector in ``features/mtcnn.py``.

Random-initialised here; :func:`musefusion.features.audio.load_network` loads a user's weight file into them.
Imported only when a network is built (``features/audio.py``, ``features/video.py``), so commands that extract
nothing never pay torch's import time.
"""

from __future__ import annotations

import torch
from torch import nn

#: VGG-Face's conv blocks: (channels, convolutions) of conv1..conv5.
VGGFACE_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


class VGGish(nn.Module):
    """conv64-pool-conv128-pool-conv256x2-pool-conv512x2-pool-fc4096-fc4096-fc128 (no ReLU after the last)."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for c in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
            if c == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, int(c), 3, padding=1), nn.ReLU(inplace=True)]
                c_in = int(c)
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(nn.Linear(512 * 6 * 4, 4096), nn.ReLU(inplace=True),
                                        nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Linear(4096, 128))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, 96, 64)`` -> ``(batch, 128)``."""
        x = self.features(x)
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # TF's NHWC flatten order
        return self.embeddings(x)


class VGGFace(nn.Module):
    """VGG16 conv1_1..conv5_3 with ReLU, global average of conv5_3 -> 512-d."""

    def __init__(self) -> None:
        super().__init__()
        c_in = 3
        self.names: list[list[str]] = []
        for b, (c, n) in enumerate(VGGFACE_BLOCKS, start=1):
            names = []
            for i in range(1, n + 1):
                setattr(self, f"conv{b}_{i}", nn.Conv2d(c_in, c, 3, padding=1))
                names.append(f"conv{b}_{i}")
                c_in = c
            self.names.append(names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 3, 224, 224)`` mean-subtracted RGB -> ``(batch, 512)``."""
        for b, names in enumerate(self.names):
            for name in names:
                x = torch.relu(getattr(self, name)(x))
            if b < len(self.names) - 1:
                x = nn.functional.max_pool2d(x, 2, 2)
        return x.mean(dim=(2, 3))
