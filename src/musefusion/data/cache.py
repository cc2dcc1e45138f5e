"""The corpus cache's file format: uncompressed ``.npz`` of plain arrays (never pickled objects)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from musefusion.fsutil import atomic_path


def save_npz(path: str | os.PathLike[str], **arrays: np.ndarray) -> Path:
    """Save arrays atomically as an uncompressed ``.npz`` (no pickled objects)."""
    with atomic_path(path) as tmp:
        with tmp.open("wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy's stub types allow_pickle, not **arrays
    return Path(path)


def load_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Load a ``.npz`` written by :func:`save_npz` (``allow_pickle=False``)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
