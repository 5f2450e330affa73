"""Intake's entry points: Kafka subscribers, the HTTP webhook and command-line tools."""
