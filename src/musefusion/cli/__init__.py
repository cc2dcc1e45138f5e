"""The ``musefusion`` command line."""
