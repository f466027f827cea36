"""Unit tests of stocksync.codec (a package, like tests/unit/service: its modules are imported as
`codec.test_*`)."""
