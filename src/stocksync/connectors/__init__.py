"""Connectors: push each channel's projection to the channel's API.

Pure decision logic (no Kafka, no HTTP, no clock: time is an argument):
  budget.py   token bucket: the channel's request budget, with pauses the channel asks for
  plan.py     per-SKU coalescing, priorities, one request in flight per SKU, never an older
              version after a newer one, retries with backoff
  offsets.py  which projection offsets may be committed (only what the channel acknowledged)
  drift.py    the drift rule and the exposure of a channel

Adapters: runtime.py (confluent-kafka consumer/producer + aiohttp client and report server),
settings.py (STOCKSYNC_CONNECTOR_*), cli.py (`stocksync connector run`, `stocksync endpoints run`).
"""
