"""Unit tests of stocksync.adapters (a package, like tests/unit/service: its modules are imported
as `adapters.test_*`)."""
