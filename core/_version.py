"""The version, kept in a module of its own so that ``bigmodel --help`` imports nothing else."""

__version__ = "0.1.0"
