"""Training metric files and the learning-curve figure drawn from them."""

import matplotlib.image

from stpn.metrics import MetricsWriter, plot_learning_curve, read_update_shares


def write_run(run_dir, fractions):
    """Write a run of four updates and twelve games, with the given update fractions."""
    writer = MetricsWriter(run_dir, tensorboard=False)
    for index, fraction in enumerate(fractions):
        writer.log_update({"frames": 400 * (index + 1), "updates": index + 1,
                           "synapse_update_fraction": fraction})
    for game in range(12):
        writer.log_episode({"frames": 100 * (game + 1), "episode": game, "env_index": 0,
                            "return": -21 + game, "length_steps": 800, "truncated": False})
    writer.close()


def test_update_shares_of_mstpn_run(tmp_path):
    write_run(tmp_path, [0.0, 0.01, 0.04, 0.05])
    assert read_update_shares(tmp_path) == [(400, 0.0), (800, 0.01), (1200, 0.04),
                                            (1600, 0.05)]


def test_update_shares_of_lstm_run_empty(tmp_path):
    write_run(tmp_path, ["", "", "", ""])
    assert read_update_shares(tmp_path) == []


def test_learning_curve_panels(tmp_path):
    (tmp_path / "mstpn").mkdir()
    (tmp_path / "lstm").mkdir()
    write_run(tmp_path / "mstpn", [0.0, 0.01, 0.04, 0.05])
    write_run(tmp_path / "lstm", ["", "", "", ""])
    mstpn = plot_learning_curve(tmp_path / "mstpn", tmp_path / "mstpn.png")
    lstm = plot_learning_curve(tmp_path / "lstm", tmp_path / "lstm.png")
    # Three panels of 3 inches at 120 dpi for the m-STPN, two for the LSTM.
    assert matplotlib.image.imread(mstpn).shape[0] == 3 * 3 * 120
    assert matplotlib.image.imread(lstm).shape[0] == 2 * 3 * 120
