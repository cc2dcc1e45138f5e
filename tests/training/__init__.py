"""Tests of musefusion.training."""
