"""prunetui: an interactive pruning workbench for PyTorch CNNs in the terminal."""

__version__ = "0.1.0"
