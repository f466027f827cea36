"""stocksync: one authoritative available-to-promise number for every sales channel."""

__version__ = "0.1.0"
