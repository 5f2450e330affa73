"""Pure notifier logic: message templates and delivery policy (no network, no database)."""
