"""Simulated channels for the demo and the tests: endpoints that stand in for shops and
marketplaces, and a simulator of channel traffic. Not part of the shipped library."""
