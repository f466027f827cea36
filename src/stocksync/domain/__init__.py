"""The pure core: events, state, the fold and the ATP projections. No Kafka, no I/O, no clock."""
