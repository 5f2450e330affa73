"""Intake: councils' case events in their own shapes in, canonical case events out (issue 4)."""
