"""Unit tests of stocksync.domain (a package, like tests/unit/service: its modules are imported as
`domain.test_*`)."""
