"""Entry points of the deadlines service (CLI; Kafka and HTTP live beside it)."""
