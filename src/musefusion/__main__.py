"""``python -m musefusion``: the ``musefusion`` command."""

from musefusion.cli.app import main

if __name__ == "__main__":
    main()
