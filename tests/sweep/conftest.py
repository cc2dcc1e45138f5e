"""Fixtures of the sweep tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sweep.sweep_helpers import make_tiny_root


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    """A 4/2/2-subject synthetic stress corpus of half a minute per subject (egemaps only)."""
    return make_tiny_root(tmp_path_factory)
