"""Late fusion of unimodal prediction streams (paper Eq. 12-14, 19)."""
