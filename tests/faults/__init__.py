"""Hostile inputs and every user-facing failure, through the real entry point."""
