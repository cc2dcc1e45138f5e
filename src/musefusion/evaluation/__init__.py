"""Metrics (CCC, PCC, RMSE), paper-style tables and plots."""
