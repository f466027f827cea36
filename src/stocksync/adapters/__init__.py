"""The real implementations of the service layer's ports: Kafka and RocksDB."""
