"""Unit tests of stocksync.cli (a package, like tests/unit/service: its modules are imported as
`cli.test_*`)."""
