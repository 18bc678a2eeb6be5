"""The m-STPN recurrence: reference loop, torch steps and C kernel agree; gradients check out."""

import math

import pytest
import torch

from stpn.mstpn_kernel import MODE_OUTPUT_ONLY, MODE_UPDATE, load_kernel
from stpn.mstpn_ops import (
    MSTPNRecorder,
    SynapseConstraints,
    TorchSteps,
    clamp_decay,
    discretise,
    mstpn_sequence,
    reference_sequence,
    run_steps,
)

DEVICE = SynapseConstraints(lambda_min=0.08, lambda_max=0.92, df_step=0.5, df_max=20.0)
KERNEL = load_kernel()
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="the C kernel could not be built")


def make_problem(gamma_scale, *, steps=6, batch=3, n_post=5, n_input=9, dtype=torch.float32,
                 zero_state=False, seed=0):
    """Return inputs, start state and parameters of a small m-STPN problem."""
    generator = torch.Generator().manual_seed(seed)
    n_pre = n_input + n_post

    def rand(*shape):
        return torch.rand(*shape, generator=generator, dtype=dtype)

    def randn(*shape):
        return torch.randn(*shape, generator=generator, dtype=dtype)

    problem = {
        "x": torch.relu(randn(steps, batch, n_input)),
        "weight": (rand(n_post, n_pre) - 0.5) * 0.6,
        "bias": randn(n_post) * 0.1,
        # Some decays start outside the device range to exercise the clamp.
        "decay": rand(n_post, n_pre) * 1.2 - 0.1,
        "hebbian": randn(n_post, n_pre) * gamma_scale,
        "h0": torch.zeros(batch, n_post, dtype=dtype) if zero_state
        else torch.tanh(randn(batch, n_post)),
        "f0": torch.zeros(batch, n_post, n_pre, dtype=dtype) if zero_state
        else randn(batch, n_post, n_pre),
    }
    episode_start = torch.zeros(steps, batch, dtype=torch.bool)
    episode_start[steps // 2, 1] = True
    problem["episode_start"] = episode_start
    return problem


PARAMETERS = ("x", "weight", "bias", "decay", "hebbian")


def reference_run(problem, constraints, output_grad):
    leaves = {name: problem[name].clone().requires_grad_() for name in PARAMETERS}
    outputs, (h_final, f_final) = reference_sequence(
        leaves["x"], problem["h0"], problem["f0"], leaves["weight"], leaves["bias"],
        leaves["decay"], leaves["hebbian"], constraints, problem["episode_start"])
    grads = torch.autograd.grad(outputs, [leaves[name] for name in PARAMETERS], output_grad)
    return outputs.detach(), h_final.detach(), f_final.detach(), grads


def fast_run(problem, constraints, output_grad, steps_impl, checkpoint_every):
    steps, batch, _ = problem["x"].shape
    n_post, n_pre = problem["weight"].shape
    recorder = MSTPNRecorder(steps, batch, n_post, n_pre, checkpoint_every,
                             dtype=problem["x"].dtype)
    h, f = problem["h0"].clone(), problem["f0"].clone()
    zero_rows = (f == 0).all(dim=-1).to(torch.uint8)
    lam = clamp_decay(problem["decay"], constraints)
    run_steps(problem["x"], h, f, problem["weight"], problem["bias"], problem["hebbian"], lam,
              constraints, steps_impl, episode_start=problem["episode_start"], recorder=recorder,
              zero_rows=zero_rows)
    flagged_but_nonzero = zero_rows.bool() & ~(f == 0).all(dim=-1)
    assert not flagged_but_nonzero.any()
    leaves = {name: problem[name].clone().requires_grad_() for name in PARAMETERS}
    outputs = mstpn_sequence(leaves["x"], leaves["weight"], leaves["bias"], leaves["decay"],
                             leaves["hebbian"], recorder, constraints, steps_impl)
    grads = torch.autograd.grad(outputs, [leaves[name] for name in PARAMETERS], output_grad)
    return outputs.detach(), h, f, grads


def assert_close(actual, expected, name, rtol, atol):
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, msg=lambda m: f"{name}: {m}")


# --- discretisation and clamping ----------------------------------------------------------


def test_discretise_rounds_half_to_even_steps():
    raw = torch.tensor([0.24, 0.25, 0.26, 0.74, 0.75, -0.25, -0.26, 1.0])
    expected = torch.tensor([0.0, 0.0, 0.5, 0.5, 1.0, 0.0, -0.5, 1.0])
    assert torch.equal(discretise(raw, 0.5, 20.0), expected)


def test_discretise_clips_to_df_max():
    raw = torch.tensor([25.0, -25.0, 19.9, -20.2])
    assert torch.equal(discretise(raw, 0.5, 20.0), torch.tensor([20.0, -20.0, 20.0, -20.0]))


def test_discretise_step_zero_only_clips():
    raw = torch.tensor([0.123, -30.0])
    assert torch.equal(discretise(raw, 0.0, 20.0), torch.tensor([0.123, -20.0]))


def test_clamp_decay_into_device_range():
    decay = torch.tensor([-0.5, 0.0, 0.5, 0.95, 2.0])
    lam = clamp_decay(decay, DEVICE)
    assert torch.equal(lam, torch.tensor([0.08, 0.08, 0.5, 0.92, 0.92]))


def test_constraints_reject_inverted_range():
    with pytest.raises(ValueError, match="lambda_min <= lambda_max"):
        SynapseConstraints(lambda_min=0.9, lambda_max=0.1, df_step=0.5, df_max=20.0)


def test_updates_are_multiples_of_step_within_clip():
    problem = make_problem(gamma_scale=40.0, zero_state=True)
    steps, batch, _ = problem["x"].shape
    n_post, n_pre = problem["weight"].shape
    h, f = problem["h0"].clone(), problem["f0"].clone()
    lam = clamp_decay(problem["decay"], DEVICE)
    df = torch.zeros(steps, batch, n_post, n_pre)
    run_steps(problem["x"], h, f, problem["weight"], problem["bias"], problem["hebbian"], lam,
              DEVICE, TorchSteps, df_out=df)
    assert torch.equal(df, torch.round(df / 0.5) * 0.5)
    assert df.abs().max() == 20.0
    assert (df != 0).any()


# --- reference loop against the custom backward -------------------------------------------


@pytest.mark.parametrize("gamma_scale", [1e-4, 1.0, 30.0])
@pytest.mark.parametrize("checkpoint_every", [1, 2, 6])
def test_torch_steps_match_reference(gamma_scale, checkpoint_every):
    problem = make_problem(gamma_scale, dtype=torch.float64)
    output_grad = torch.randn(problem["x"].shape[0], 3, 5, dtype=torch.float64,
                              generator=torch.Generator().manual_seed(1))
    expected = reference_run(problem, DEVICE, output_grad)
    actual = fast_run(problem, DEVICE, output_grad, TorchSteps, checkpoint_every)

    assert_close(actual[0], expected[0], "outputs", 1e-12, 1e-12)
    assert_close(actual[1], expected[1], "final h", 1e-12, 1e-12)
    assert_close(actual[2], expected[2], "final F", 1e-12, 1e-12)
    for name, got, want in zip(PARAMETERS, actual[3], expected[3]):
        assert_close(got, want, f"grad {name}", 1e-9, 1e-10)


def test_gradcheck_without_discretisation():
    constraints = SynapseConstraints(lambda_min=0.08, lambda_max=0.92, df_step=0.0,
                                     df_max=math.inf)
    problem = make_problem(0.5, steps=4, batch=2, n_post=3, n_input=4, dtype=torch.float64)

    def sequence(x, weight, bias, decay, hebbian):
        steps, batch, _ = x.shape
        recorder = MSTPNRecorder(steps, batch, 3, 7, 2, dtype=torch.float64)
        h, f = problem["h0"].clone(), problem["f0"].clone()
        run_steps(x.detach(), h, f, weight, bias, hebbian, clamp_decay(decay, constraints),
                  constraints, TorchSteps, episode_start=problem["episode_start"],
                  recorder=recorder)
        return mstpn_sequence(x, weight, bias, decay, hebbian, recorder, constraints, TorchSteps)

    inputs = tuple(problem[name].clone().requires_grad_() for name in PARAMETERS)
    assert torch.autograd.gradcheck(sequence, inputs, eps=1e-6, atol=1e-6)


def test_gradcheck_with_active_clip():
    constraints = SynapseConstraints(lambda_min=0.0, lambda_max=1.0, df_step=0.0, df_max=0.4)
    problem = make_problem(1.5, steps=3, batch=2, n_post=3, n_input=4, dtype=torch.float64,
                           seed=3)
    problem["decay"] = problem["decay"].clamp(0.05, 0.95)

    def sequence(x, weight, bias, decay, hebbian):
        outputs, _ = reference_sequence(x, problem["h0"], problem["f0"], weight, bias, decay,
                                        hebbian, constraints, problem["episode_start"])
        return outputs

    inputs = tuple(problem[name].clone().requires_grad_() for name in PARAMETERS)
    assert torch.autograd.gradcheck(sequence, inputs, eps=1e-7, atol=1e-5)


def test_replay_rejects_other_inputs():
    problem = make_problem(1.0)
    steps, batch, _ = problem["x"].shape
    recorder = MSTPNRecorder(steps, batch, 5, 14, 2)
    h, f = problem["h0"].clone(), problem["f0"].clone()
    run_steps(problem["x"], h, f, problem["weight"], problem["bias"], problem["hebbian"],
              clamp_decay(problem["decay"], DEVICE), DEVICE, TorchSteps, recorder=recorder)
    with pytest.raises(ValueError, match="does not match"):
        mstpn_sequence(problem["x"] + 1.0, problem["weight"], problem["bias"], problem["decay"],
                       problem["hebbian"], recorder, DEVICE, TorchSteps)


def test_replay_rejects_incomplete_recording():
    recorder = MSTPNRecorder(4, 2, 3, 7, 2)
    x = torch.zeros(4, 2, 4)
    with pytest.raises(ValueError, match="recording of 4 steps, got 0"):
        mstpn_sequence(x, torch.zeros(3, 7), torch.zeros(3), torch.zeros(3, 7),
                       torch.zeros(3, 7), recorder, DEVICE, TorchSteps)


# --- the C kernel against the torch steps --------------------------------------------------


@needs_kernel
@pytest.mark.parametrize("gamma_scale, zero_state", [
    (1e-4, True),    # no update reaches half a step and F stays zero: the skipping path
    (1e-4, False),   # no update, but F decays
    (2.0, False),    # sparse updates
    (40.0, True),    # many updates, the clip active
])
@pytest.mark.parametrize("checkpoint_every", [1, 4])
def test_kernel_matches_torch_steps(gamma_scale, zero_state, checkpoint_every):
    problem = make_problem(gamma_scale, zero_state=zero_state, batch=4, n_post=6, n_input=37)
    output_grad = torch.randn(problem["x"].shape[0], 4, 6,
                              generator=torch.Generator().manual_seed(2))
    expected = fast_run(problem, DEVICE, output_grad, TorchSteps, checkpoint_every)
    actual = fast_run(problem, DEVICE, output_grad, KERNEL, checkpoint_every)

    assert_close(actual[0], expected[0], "outputs", 1e-5, 1e-6)
    assert_close(actual[2], expected[2], "final F", 1e-5, 1e-5)
    for name, got, want in zip(PARAMETERS, actual[3], expected[3]):
        assert_close(got, want, f"grad {name}", 1e-4, 1e-5)


@needs_kernel
def test_kernel_counts_and_updates_match_torch():
    problem = make_problem(3.0, zero_state=True, batch=2, n_post=4, n_input=20)
    lam = clamp_decay(problem["decay"], DEVICE)
    zn = torch.nn.functional.normalize(torch.rand(2, 24), dim=1)
    u = torch.randn(2, 4) * 0.3
    f_start = torch.randn(2, 4, 24, generator=torch.Generator().manual_seed(4))
    results = {}
    for name, impl in (("torch", TorchSteps), ("kernel", KERNEL)):
        f = f_start.clone()
        f_out = torch.empty_like(f)
        h = torch.empty(2, 4)
        counts = torch.zeros(8, dtype=torch.int32)
        df = torch.empty(2, 4, 24)
        impl.forward_step(f, f_out, zn, u, problem["hebbian"], lam, 0.5, 20.0, MODE_UPDATE, h,
                          counts=counts, df_out=df)
        results[name] = (h, f_out, counts, df)
    for got, want in zip(results["kernel"], results["torch"]):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert int(results["kernel"][2].sum()) == int((results["kernel"][3] != 0).sum())


@needs_kernel
def test_kernel_output_only_leaves_state():
    f = torch.randn(2, 3, 10)
    before = f.clone()
    h = torch.empty(2, 3)
    KERNEL.forward_step(f, f, torch.rand(2, 10), torch.zeros(2, 3), torch.ones(3, 10) * 50,
                        torch.full((3, 10), 0.5), 0.5, 20.0, MODE_OUTPUT_ONLY, h)
    assert torch.equal(f, before)
    assert torch.isfinite(h).all()


@needs_kernel
def test_kernel_rejects_wrong_shapes():
    f = torch.zeros(2, 3, 10)
    with pytest.raises(ValueError, match="zn: expected 20 elements, got 10"):
        KERNEL.forward_step(f, f, torch.zeros(10), torch.zeros(2, 3), torch.zeros(3, 10),
                            torch.zeros(3, 10), 0.5, 20.0, MODE_UPDATE, torch.zeros(2, 3))


@needs_kernel
def test_kernel_rejects_float64():
    f = torch.zeros(1, 1, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="f_in: expected a contiguous CPU tensor"):
        KERNEL.forward_step(f, f, torch.zeros(1, 2), torch.zeros(1, 1), torch.zeros(1, 2),
                            torch.zeros(1, 2), 0.5, 20.0, MODE_UPDATE, torch.zeros(1, 1))


@needs_kernel
def test_kernel_zero_flags_skip_rows():
    gamma = torch.full((3, 10), 1e-4)
    lam = torch.full((3, 10), 0.5)
    zn = torch.nn.functional.normalize(torch.rand(2, 10), dim=1)
    f = torch.zeros(2, 3, 10)
    f[1, 2] = 1.0
    zero_rows = torch.tensor([[1, 1, 1], [0, 0, 0]], dtype=torch.uint8)
    h = torch.empty(2, 3)
    KERNEL.forward_step(f, f, zn, torch.zeros(2, 3), gamma, lam, 0.5, 20.0, MODE_UPDATE, h,
                        zero_in=zero_rows, zero_out=zero_rows)
    # Rows found zero are flagged; the decayed non-zero row is not.
    assert zero_rows.tolist() == [[1, 1, 1], [1, 1, 0]]
    assert torch.equal(f[1, 2], torch.full((10,), 0.5))
    assert torch.equal(h[0], torch.zeros(3))


@needs_kernel
def test_zero_chunks_skip_recomputation():
    problem = make_problem(1e-4, zero_state=True, batch=2, n_post=4, n_input=12)
    output_grad = torch.randn(problem["x"].shape[0], 2, 4,
                              generator=torch.Generator().manual_seed(5))
    expected = fast_run(problem, DEVICE, output_grad, TorchSteps, 3)
    actual = fast_run(problem, DEVICE, output_grad, KERNEL, 3)
    for name, got, want in zip(PARAMETERS, actual[3], expected[3]):
        assert_close(got, want, f"grad {name}", 1e-4, 1e-5)
    assert torch.equal(actual[2], torch.zeros_like(actual[2]))
