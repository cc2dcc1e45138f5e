"""Feature extraction from raw recordings and alignment onto the 2 Hz label grid."""
