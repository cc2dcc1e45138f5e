"""Tests of musefusion.data."""
