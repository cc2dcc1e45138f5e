"""Tests of musefusion.models."""
