"""Fixtures for these tests (the shared corpora live in tests/conftest.py)."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _share_cores_between_xdist_workers():
    """With ``-n N``, give each worker 1/N of torch's threads: N workers x all cores oversubscribes the CPU and
    made these tests about 4x slower on 2 cores (93 s against 25 s)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, before // workers))
    yield
    torch.set_num_threads(before)
