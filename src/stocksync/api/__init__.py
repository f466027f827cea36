"""The HTTP API served by each worker: ATP lookups and health."""
