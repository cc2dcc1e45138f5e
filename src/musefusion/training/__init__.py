"""Fitting and predicting: the CCC loss, seeds, the training loop and run directories."""
