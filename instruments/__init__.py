"""Drivers for the instruments of the memristor bench, and the safety limits they enforce."""
