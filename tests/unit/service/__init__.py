"""Unit tests of stocksync.service over the memory adapters (no Kafka).

A package, unlike tests/unit itself: it puts tests/unit on sys.path (pytest's rootdir-based
import), so these modules import `builders` as their siblings one level up do, also when only
this folder is run.
"""
