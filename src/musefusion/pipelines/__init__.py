"""Pipelines over whole corpora and recordings: the paper reproduction and its report, curves for a new
recording, the MuSe test submission."""
