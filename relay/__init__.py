"""Porch relay: persistent website messaging for small businesses."""

__version__ = "0.1.0"
