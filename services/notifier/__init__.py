"""The notifier: tells caseworkers, families and managers about EHC deadlines in time (DESIGN §6)."""
