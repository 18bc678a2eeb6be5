"""The three recurrent layers: shapes, equations, recording and replay with gradients."""

import pytest
import torch

from stpn.layer_lstm import LSTMBaseline
from stpn.layer_mstpn import MSTPN, ORIGINAL_HEBBIAN_INIT, count_parameters
from stpn.layer_stpn import STPN
from stpn.mstpn_ops import SynapseConstraints

DEVICE = SynapseConstraints(lambda_min=0.08, lambda_max=0.92, df_step=0.5, df_max=20.0)


def make_layer(kind, input_size=7, hidden_size=4):
    torch.manual_seed(0)
    if kind == "mstpn":
        # The tests below scale Gamma up from the original STPN's initialisation.
        return MSTPN(input_size, hidden_size, DEVICE, checkpoint_every=2,
                     hebbian_init=ORIGINAL_HEBBIAN_INIT)
    if kind == "stpn":
        return STPN(input_size, hidden_size, checkpoint_every=2)
    return LSTMBaseline(input_size, hidden_size, checkpoint_every=2)


def act_and_replay(layer, x, episode_start):
    """Run the rollout step by step (acting), then replay it with gradients."""
    steps, batch, _ = x.shape
    state = layer.initial_state(batch)
    layer.start_recording(steps, batch)
    acted = torch.stack([layer.step(x[t], state, episode_start=episode_start[t], record_step=t)
                         .clone() for t in range(steps)])
    replayed = layer(x, check_inputs=True)
    return acted, replayed, state


@pytest.mark.parametrize("kind", ["mstpn", "stpn", "lstm"])
def test_layer_shapes(kind):
    layer = make_layer(kind)
    x = torch.rand(5, 3, 7)
    episode_start = torch.zeros(5, 3, dtype=torch.bool)
    acted, replayed, state = act_and_replay(layer, x, episode_start)
    assert acted.shape == (5, 3, 4)
    assert replayed.shape == (5, 3, 4)
    if kind == "lstm":
        assert [t.shape for t in state.tensors] == [(3, 4), (3, 4)]
    elif kind == "stpn":
        assert [t.shape for t in state.tensors] == [(3, 4), (3, 4, 11)]
    else:
        assert [t.shape for t in state.tensors] == [(3, 4), (3, 4, 11), (3, 4)]


@pytest.mark.parametrize("kind", ["mstpn", "stpn", "lstm"])
def test_replay_equals_acting(kind):
    layer = make_layer(kind)
    x = torch.rand(6, 2, 7)
    episode_start = torch.zeros(6, 2, dtype=torch.bool)
    episode_start[3, 0] = True
    acted, replayed, _ = act_and_replay(layer, x, episode_start)
    torch.testing.assert_close(replayed, acted, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["mstpn", "stpn", "lstm"])
def test_replay_gradients_reach_every_parameter(kind):
    layer = make_layer(kind)
    if kind == "mstpn":
        with torch.no_grad():
            layer.hebbian.mul_(1e5)  # large enough for some updates to be non-zero
    x = torch.rand(6, 2, 7, requires_grad=True)
    episode_start = torch.zeros(6, 2, dtype=torch.bool)
    _, replayed, _ = act_and_replay(layer, x, episode_start)
    replayed.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, parameter in layer.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


def test_mstpn_step_matches_reference_loop():
    layer = make_layer("mstpn")
    with torch.no_grad():
        layer.hebbian.mul_(1e4)
    x = torch.rand(8, 3, 7)
    episode_start = torch.zeros(8, 3, dtype=torch.bool)
    episode_start[5, 2] = True
    acted, _, state = act_and_replay(layer, x, episode_start)
    expected, (_, f_final) = layer.reference_forward(x, layer.initial_state(3),
                                                           episode_start)
    torch.testing.assert_close(acted, expected.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(state.tensors[1], f_final.detach(), rtol=1e-5, atol=1e-5)


def test_mstpn_state_resets_at_episode_start():
    layer = make_layer("mstpn")
    with torch.no_grad():
        layer.hebbian.mul_(1e4)
    state = layer.initial_state(2)
    for _ in range(3):
        layer.step(torch.rand(2, 7), state)
    h_before = state.tensors[0].clone()
    fresh = layer.initial_state(2)
    x = torch.rand(2, 7)
    expected = layer.step(x[1:], RecurrentStateSlice(fresh, 1)).clone()
    got = layer.step(x, state, episode_start=torch.tensor([False, True]))
    torch.testing.assert_close(got[1:], expected)
    assert not torch.equal(got[0], h_before[0])


def RecurrentStateSlice(state, count):
    from stpn.recurrent import RecurrentState

    return RecurrentState(*(tensor[:count].clone() for tensor in state.tensors))


def test_mstpn_peek_leaves_state_unchanged():
    layer = make_layer("mstpn")
    with torch.no_grad():
        layer.hebbian.mul_(1e4)
    state = layer.initial_state(2)
    layer.step(torch.rand(2, 7), state)
    before = [t.clone() for t in state.tensors]
    x = torch.rand(2, 7)
    peeked = layer.peek(x, state)
    for got, want in zip(state.tensors, before):
        assert torch.equal(got, want)
    torch.testing.assert_close(peeked, layer.step(x, state))


def test_mstpn_initial_decay_inside_device_range():
    layer = MSTPN(50, 8, DEVICE)
    assert layer.decay.min() >= 0.08
    assert layer.decay.max() <= 0.92


def test_mstpn_projection_clamps_decay():
    layer = make_layer("mstpn")
    with torch.no_grad():
        layer.decay[0, 0] = 1.5
        layer.decay[0, 1] = -0.2
    layer.project_parameters()
    assert layer.decay[0, 0].item() == pytest.approx(0.92)
    assert layer.decay[0, 1].item() == pytest.approx(0.08)


def test_mstpn_no_update_with_original_stpn_hebbian():
    layer = MSTPN(30, 6, DEVICE, hebbian_init=ORIGINAL_HEBBIAN_INIT)
    state = layer.initial_state(2)
    counts = torch.zeros(12, dtype=torch.int32)
    for _ in range(5):
        layer.step(torch.rand(2, 30) * 10, state, counts=counts)
        assert counts.sum() == 0
    assert state.tensors[1].abs().sum() == 0


def sparse_features(steps, batch, size, generator):
    """Return non-negative, half-zero inputs like ReLU features of a Pong frame."""
    x = torch.rand(steps, batch, size, generator=generator)
    return x * (torch.rand(steps, batch, size, generator=generator) < 0.5)


def test_mstpn_default_hebbian_is_fifty_device_steps():
    torch.manual_seed(3)
    layer = MSTPN(100, 8, DEVICE)
    assert layer.hebbian_init == 25.0
    assert 20.0 < layer.hebbian.abs().max() <= 25.0
    half_step = SynapseConstraints(lambda_min=0.08, lambda_max=0.92, df_step=0.25, df_max=20.0)
    assert MSTPN(10, 2, half_step).hebbian.abs().max() <= 12.5


def test_default_hebbian_updates_and_trains_decay():
    torch.manual_seed(4)
    layer = MSTPN(200, 16, DEVICE, checkpoint_every=2)
    with torch.no_grad():
        layer.weight.mul_(8)  # |W| up to 1 gives |h| of order 0.5, so that some products reach half a step
    x = sparse_features(10, 2, 200, torch.Generator().manual_seed(5))
    state = layer.initial_state(2)
    counts = torch.zeros(2 * 16, dtype=torch.int32)
    layer.start_recording(10, 2)
    for t in range(10):
        layer.step(x[t], state, counts=counts, record_step=t)
    updated = counts.sum().item() / (10 * 2 * 16 * 216)
    assert 0.0 < updated < 0.2
    layer(x).square().sum().backward()
    assert layer.decay.grad.abs().sum() > 0


def test_mstpn_rejects_negative_hebbian_init():
    with pytest.raises(ValueError, match="hebbian_init"):
        MSTPN(10, 2, DEVICE, hebbian_init=-1.0)


def test_mstpn_forward_before_recording_raises():
    layer = make_layer("mstpn")
    with pytest.raises(RuntimeError, match="start_recording"):
        layer(torch.rand(3, 2, 7))


def test_stpn_step_equation():
    layer = make_layer("stpn")
    with torch.no_grad():
        layer.hebbian.mul_(100)
    state = layer.initial_state(1)
    x1, x2 = torch.rand(1, 7), torch.rand(1, 7)
    layer.step(x1, state)
    h1, f1 = (t.clone() for t in state.tensors)
    h2 = layer.step(x2, state)

    z = torch.cat([x2, h1], dim=1)[0]
    g = layer.weight + f1[0]
    norm = g.norm(dim=1, keepdim=True) + 1e-12
    expected_h = torch.tanh((g / norm) @ z + layer.bias)
    expected_f = layer.decay * f1[0] / norm + layer.hebbian * torch.outer(expected_h, z)
    torch.testing.assert_close(h2[0], expected_h.detach())
    torch.testing.assert_close(state.tensors[1][0], expected_f.detach())


def test_lstm_has_about_mstpn_parameter_count():
    lstm = LSTMBaseline(2592, 48)
    mstpn = MSTPN(2592, 64, DEVICE)
    assert count_parameters(lstm) == 507_264
    assert count_parameters(mstpn) == 510_016
    assert abs(count_parameters(lstm) / count_parameters(mstpn) - 1) < 0.01
