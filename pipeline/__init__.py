"""Real-time clickstream analytics: Kafka in, session metrics in PostgreSQL and OpenSearch out."""

__version__ = "0.1.0"
