"""sim_backend package."""
