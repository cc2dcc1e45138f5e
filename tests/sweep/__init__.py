"""Tests of musefusion.sweep."""
