"""Connectors: push each channel's projection to the channel's API.

Pure decision logic (no Kafka, no HTTP, no clock: time is an argument):
  budget.py   token bucket: the channel's request budget, with pauses the channel asks for
  plan.py     per-SKU coalescing, priorities, one request in flight per SKU, never an older
              version after a newer one, retries with backoff
  offsets.py  which projection offsets may be committed (only what the channel acknowledged)
  drift.py    the drift rule and the exposure of a channel

The running connector, one module per job (runtime.py composes them):
  state.py         what the jobs share: plan, budget, offset tracker, counters, wake-up event
  consume.py       the projection consumer (confluent-kafka) and its offset commits
  push.py          the dispatcher and the HTTP PUT to the channel (aiohttp), answers settled
  ledger.py        the published-quantities ledger: restored on start, written per acknowledgement
  reports.py       channel reports checked for drift; DRIFT alerts
  admin_http.py    the connector's HTTP API (reports in, status, health, readiness)
  kafka_clients.py Kafka client configuration, producing under backpressure
Also settings.py (STOCKSYNC_CONNECTOR_*) and cli.py (`stocksync connector run`,
`stocksync endpoints run`, which starts the simulated channels of sim/endpoints.py).
"""
