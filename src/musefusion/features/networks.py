"""The pretrained networks of feature extraction, as module-level classes whose parameter names match the
published weight files: VGGish (torchvggish's ``vggish-10086976.pth``), MTCNN's P/R/O-Net (facenet-pytorch's
``pnet.pt``, ``rnet.pt``, ``onet.pt``) and VGG-Face's convolutional part (``vgg_face_dag.pth``).

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
