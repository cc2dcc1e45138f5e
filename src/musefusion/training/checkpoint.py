"""Run checkpoints: a dict of state dicts, tensors and plain values (never a pickled module), saved atomically
and loaded with ``torch.load(..., weights_only=True)``."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

from musefusion.errors import CheckpointError, MissingDataError
from musefusion.fsutil import atomic_path
from musefusion.weights import PickledObjectsError, UnreadableError, torch_load

# ----------------------------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Save a checkpoint dict (state dicts, tensors, plain values; never a pickled module) atomically."""
    import torch  # torch: imported on first use, so the CLI starts without it

    with atomic_path(path) as tmp:
        try:
            torch.save(payload, tmp)
        except RuntimeError as exc:  # torch reports a full disk as a RuntimeError of its stream writer
            raise OSError(errno.ENOSPC, f"torch could not write the checkpoint ({str(exc)[:80]})") from None
    return Path(path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(..., weights_only=True)`` onto the CPU.

    Raises:
        MissingDataError: the file does not exist.
        CheckpointError: the file holds pickled code/objects or is not a torch checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"Checkpoint '{path}' not found; train a model first (musefusion train).")
    try:
        payload = torch_load(path)
    except PickledObjectsError as exc:
        what = f"it references {exc.global_name}" if exc.global_name else "it is not a plain weights file"
        raise CheckpointError(f"Refusing to load '{path}': it contains pickled code or objects ({what}); "
                              "only tensors and plain values are accepted. Re-save it as a state_dict.") from None
    except UnreadableError as exc:
        raise CheckpointError(f"'{path}' is not a readable torch checkpoint ({exc.reason[:160]}).") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"'{path}' holds a {type(payload).__name__}, not a musefusion checkpoint dict.")
    return payload
