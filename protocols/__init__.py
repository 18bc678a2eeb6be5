"""Measurement protocols of the memristor synapse, as PyMeasure procedures run on a bench.

``PROTOCOLS`` maps each protocol name (as used on the command line and in campaign files)
to its procedure class. ``protocols.runner.run_procedure`` runs one of them on a bench;
``protocols.campaign`` runs several in sequence from a campaign file.
"""

from protocols.bias_decay import BiasDecayProcedure
from protocols.iv_sweep import IVSweepProcedure
from protocols.long_term_levels import LongTermLevelsProcedure
from protocols.set_train import SetProcedure
from protocols.short_term import ShortTermProcedure

PROTOCOLS = {
    procedure.PROTOCOL: procedure
    for procedure in (
        IVSweepProcedure,
        SetProcedure,
        ShortTermProcedure,
        LongTermLevelsProcedure,
        BiasDecayProcedure,
    )
}

__all__ = ["PROTOCOLS"]
