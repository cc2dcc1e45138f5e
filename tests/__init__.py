"""Tests of musefusion, one folder per package of src/musefusion (faults/: hostile inputs across them)."""
