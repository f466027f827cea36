"""Unit tests of stocksync.connectors: the pure plan, budget, offsets and drift rule, and the
running connector's jobs (push, ledger, reports, admin HTTP, consume) with fakes in place of
Kafka and of the channel. A package, like tests/unit/service: its modules are imported as
`connectors.test_*`, apart from tests/unit's own test modules."""
