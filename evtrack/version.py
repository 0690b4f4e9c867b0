"""The evtrack release this code is."""

__version__ = "0.1.0"
