"""stpn package."""
