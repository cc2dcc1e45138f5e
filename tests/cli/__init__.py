"""Tests of musefusion.cli."""
