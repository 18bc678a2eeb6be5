"""Test settings for the stpn package."""

import os

# Idle OpenMP threads that spin take the cores from the emulator and make the game tests
# several times slower on a shared machine. This only takes effect if torch has not been
# imported yet when pytest collects this directory.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
