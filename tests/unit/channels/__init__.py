"""Unit tests of stocksync.channels (a package, like tests/unit/service: its modules are imported as
`channels.test_*`)."""
