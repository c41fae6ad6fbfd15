"""Kafka I/O: the tuned producer and consumer, and the dead-letter writer. No business logic here."""
