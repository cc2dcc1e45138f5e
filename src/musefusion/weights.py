"""The one safe loader of weights: :func:`torch_load` (``weights_only=True``, pickled code refused) for run
checkpoints and third-party networks alike, and :func:`load_state_dict` for networks' weight files (safetensors
or torch state dicts)."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

from safetensors import SafetensorError

from musefusion.errors import CheckpointError, MissingDataError


class PickledObjectsError(Exception):
    """A torch file that holds pickled code or objects (refused by ``weights_only=True``)."""

    def __init__(self, global_name: str | None) -> None:
        super().__init__(global_name)
        self.global_name = global_name  # the first class or function the pickle references, when torch names it


class UnreadableError(Exception):
    """A file torch cannot read at all (corrupt, truncated, not a torch file)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def torch_load(path: Path) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``: the one place a torch file is unpickled.

    Raises:
        PickledObjectsError: the file references code or objects beyond tensors and plain values.
        UnreadableError: the file is not a readable torch file.
    """
    import torch  # torch: imported on first use, so the CLI starts without it

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        raise PickledObjectsError(found.group(1) if found else None) from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise UnreadableError(str(exc).splitlines()[0]) from None


def load_state_dict(path: str | os.PathLike[str], what: str, hint: str) -> dict[str, Any]:
    """Load a weights file safely: safetensors, or a torch state dict via ``torch.load(weights_only=True)``.

    A checkpoint dict written by this package (``{"model": state_dict, ...}``) or one holding a
    ``"state_dict"`` entry is unwrapped.

    Args:
        path: the weights file.
        what: the network's name for messages ("VGGish").
        hint: how to get the file, appended to the not-found message.

    Returns:
        Parameter name -> tensor.

    Raises:
        MissingDataError: the file does not exist.
        CheckpointError: the file holds pickled code or objects, is corrupt, or is not a dict of tensors.
    """
    import torch  # torch: imported on first use, so the CLI starts without it

    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"{what} weights file '{path}' not found. {hint}")
    if path.suffix == ".safetensors":
        # torch: imported on first use, so the CLI starts without it
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{what} weights file '{path}' is not a valid safetensors file "
                                  f"({str(exc).splitlines()[0]}).") from None
    else:
        try:
            state = torch_load(path)
        except PickledObjectsError:
            raise CheckpointError(f"{what} weights file '{path}' holds pickled Python objects, not a plain "
                                  "state dict; refusing to load it. Re-save it with "
                                  "torch.save(model.state_dict(), ...) or as safetensors.") from None
        except UnreadableError as exc:
            raise CheckpointError(f"{what} weights file '{path}' cannot be read as a torch state dict "
                                  f"({exc.reason}).") from None
    if isinstance(state, dict):
        for key in ("model", "state_dict"):
            inner = state.get(key)
            if isinstance(inner, dict):
                state = inner
                break
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{what} weights file '{path}' is not a state dict of tensors "
                              f"(got {type(state).__name__}); save model.state_dict().")
    return dict(state)
