"""The channel edge: producers that emit events, connectors that consume projections."""
