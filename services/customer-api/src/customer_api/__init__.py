"""customer-api: the customer's alerts, banner and remedy choices (port 8005)."""
