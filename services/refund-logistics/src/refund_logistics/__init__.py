"""refund-logistics (RLS): remedy cases, refunds and returns on the seller's behalf (port 8004)."""
