"""Default fit settings, kept free of heavy imports so that command-line help can show them.

``memsyn fit`` builds its help text from these values without importing lmfit, scipy or
pandas; ``fitting.campaign`` and ``fitting.short_term`` use the same values.
"""

# Network step interval in seconds that turns a decay time tau into the per-step factor
# Lambda = exp(-step_interval_s / tau). The published material does not state it.
DEFAULT_STEP_INTERVAL_S = 1.0

# Grid in siemens to which the largest dF standard deviation is rounded up to give df_step.
DF_STEP_GRID_S = 1e-9
