"""Operator views of a running pipeline: the consumer group, the dead-letter topic, how fresh the stores are."""
