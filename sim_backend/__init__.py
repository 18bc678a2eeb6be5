"""The simulated bench: simulated instruments, wiring, device and virtual clock.

``sim_backend.bench.build_simulated_bench`` returns an ``instruments.bench.Bench`` whose
real drivers talk to simulated instruments; ``docs/simulated-bench.md`` describes what
the simulation covers.
"""
