"""Hyper-parameter sweeps: the paper's search space (grid.py), the resumable Optuna runner (runner.py) and the
study report (report.py)."""

from musefusion.sweep.grid import apply_params, expand_grid, grid_points, load_space, paper_space

__all__ = ["apply_params", "expand_grid", "grid_points", "load_space", "paper_space"]
