"""Bytes at the edge: Avro messages (Confluent wire format), table rows, dead-letter envelopes."""
