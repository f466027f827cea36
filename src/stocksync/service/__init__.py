"""What every entry point calls: admission of an input message, the batch fold over the row
store and output sink ports, history reads. Knows no Kafka client, faust or RocksDB."""
