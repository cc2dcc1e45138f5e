"""MuSe corpus reading, alignment, normalisation, windowing and the synthetic Ulm-TSST-like corpus."""
