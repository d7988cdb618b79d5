"""Phone calls: slot planning (pure) and booking (one write transaction)."""
