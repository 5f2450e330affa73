"""Effectively-once messaging (DESIGN §5): processed-event tracking and a transactional outbox."""
