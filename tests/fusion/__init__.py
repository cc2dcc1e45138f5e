"""Tests of musefusion.fusion."""
