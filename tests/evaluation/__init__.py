"""Tests of musefusion.evaluation."""
