"""Tests of musefusion.features."""
