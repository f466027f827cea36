"""Unit tests of stocksync.api (a package, like tests/unit/service: its modules are imported as
`api.test_*`)."""
