"""Load unimodal prediction streams written by ``formats.write_predictions`` and join them by timestamp."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from musefusion.data import formats
from musefusion.errors import DataFormatError, MissingDataError

Stream = dict[str, tuple[np.ndarray, np.ndarray]]


def load_stream(pred_dir: Path) -> Stream:
    """id -> (timestamps, values) from a folder of MuSe prediction CSVs.

    Raises:
        MissingDataError: the folder is missing or empty.
    """
    return formats.read_predictions(pred_dir)


def stack_streams(streams: list[Stream], names: list[str], ids: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Join several streams per subject by timestamp into ``(T, n_streams)`` inputs.

    Args:
        streams: one id -> (timestamps, values) mapping per stream.
        names: a name per stream (for messages).
        ids: the subjects to stack.

    Returns:
        id -> (timestamps ``(T,)``, values ``(T, n_streams)`` float32).

    Raises:
        MissingDataError: a stream has no predictions for a subject.
        DataFormatError: a stream's timestamps differ from the first stream's for a subject.
    """
    out = {}
    for sid in ids:
        cols, ref_ts = [], None
        for name, stream in zip(names, streams, strict=True):
            if sid not in stream:
                raise MissingDataError(f"Stream '{name}' has no predictions for subject '{sid}'; rerun that model "
                                       "(musefusion train/predict) so every stream covers the same subjects.")
            ts, vals = stream[sid]
            if ref_ts is None:
                ref_ts = ts
            elif len(ts) != len(ref_ts) or not np.array_equal(ts, ref_ts):
                n = min(len(ts), len(ref_ts))
                diff = np.flatnonzero(ts[:n] != ref_ts[:n])
                where = f"first at {int(ts[diff[0]])} ms vs {int(ref_ts[diff[0]])} ms" if len(diff) else \
                    f"{len(ts)} vs {len(ref_ts)} steps"
                raise DataFormatError(f"Stream '{name}' is misaligned with stream '{names[0]}' for subject '{sid}' "
                                      f"({where}); streams must be predicted on the same label grid.")
            cols.append(np.asarray(vals, dtype=np.float32))
        assert ref_ts is not None  # names is not empty
        out[sid] = (ref_ts, np.stack(cols, axis=1))
    return out
