"""The m-STPN network and its training on Atari Pong.

Reads only the device parameter file (:mod:`stpn.device`). The layers are
:class:`stpn.layer_mstpn.MSTPN` (device-constrained, with a fused C kernel),
:class:`stpn.layer_stpn.STPN` (the original) and :class:`stpn.layer_lstm.LSTMBaseline`;
:class:`stpn.a2c.A2CTrainer` trains the Pong agent of :mod:`stpn.network`, and
:func:`stpn.play.play_games` plays games and writes synapse traces (docs/trace-format.md).
"""
