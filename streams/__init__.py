"""The faust app: topics, the ATP table and the agent. Thin: decisions live in stocksync.domain."""
