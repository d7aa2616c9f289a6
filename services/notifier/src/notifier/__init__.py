"""notifier: one personal recall notice per affected customer, by email (port 8003)."""
