"""Tests of musefusion.pipelines."""
