"""The deadlines service: computes the statutory deadlines of EHC cases (DESIGN §3)."""
