"""The reward library and the CLI. Imports no torch."""

__version__ = "0.1.0"
