"""Build, load and call the fused C kernel of the m-STPN recurrence (stpn/kernels/mstpn_kernel.c).

The kernel is compiled on first use with the system C compiler (``$CC`` or ``cc``, with
OpenMP) into a per-user cache directory and loaded with ctypes. When no compiler is found
or the build fails, :func:`load_kernel` returns None and the layers use the torch
implementation in :mod:`stpn.mstpn_ops`, which computes the same equations more slowly.
Set ``MEMSYN_STPN_KERNEL=torch`` to force the torch implementation.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

log = logging.getLogger(__name__)

SOURCE_PATH = Path(__file__).with_name("kernels") / "mstpn_kernel.c"
DISABLE_VARIABLE = "MEMSYN_STPN_KERNEL"
THREADS_VARIABLE = "MEMSYN_STPN_KERNEL_THREADS"

# Values of the ``mode`` argument of the forward step, as defined in the C source.
MODE_OUTPUT_ONLY = 0
MODE_UPDATE = 1
MODE_UPDATE_GIVEN_H = 2

# -ffp-contract=off keeps lam * F + dF as a rounded product plus a rounded sum, as torch
# computes it; -fassociative-math only reorders the dot product's sum.
_BASE_FLAGS = (
    "-O3", "-shared", "-fPIC", "-fopenmp", "-ffp-contract=off", "-fno-math-errno",
    "-fno-trapping-math", "-fassociative-math", "-fno-signed-zeros",
)


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _compile_flags() -> list[str]:
    flags = list(_BASE_FLAGS)
    if {"avx2", "fma"} <= _cpu_flags():
        flags += ["-mavx2", "-mfma", "-mprefer-vector-width=256"]
    return flags


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "memsyn" / "kernels"


def _build(compiler: str, flags: list[str]) -> Path:
    """Compile the kernel unless a build of this source with these flags is cached."""
    source = SOURCE_PATH.read_bytes()
    key = hashlib.sha256(
        source + " ".join([compiler, platform.machine(), *flags]).encode()
    ).hexdigest()[:16]
    target = _cache_dir() / f"mstpn_kernel-{key}.so"
    if target.exists():
        return target

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        built = Path(scratch) / target.name
        command = [compiler, *flags, str(SOURCE_PATH), "-o", str(built), "-lm"]
        log.info("compiling the m-STPN kernel: %s", " ".join(command))
        result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                                check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{compiler} exited with {result.returncode}: {result.stderr.strip()}")
        # Atomic, so that processes building at the same time never load a partial file.
        os.replace(built, target)
    return target


def _pointer(tensor: torch.Tensor | None, name: str, numel: int,
             dtype: torch.dtype = torch.float32) -> ctypes.c_void_p | None:
    if tensor is None:
        return None
    if tensor.dtype != dtype or tensor.device.type != "cpu" or not tensor.is_contiguous():
        raise ValueError(
            f"{name}: expected a contiguous CPU tensor of {dtype}, got {tensor.dtype} on "
            f"{tensor.device}, contiguous={tensor.is_contiguous()}"
        )
    if tensor.numel() != numel:
        raise ValueError(f"{name}: expected {numel} elements, got {tensor.numel()}")
    return ctypes.c_void_p(tensor.data_ptr())


class MSTPNKernel:
    """Typed wrappers around the two C entry points.

    Every tensor is checked before its pointer is passed on, because a wrong shape would
    make the C code write out of bounds.
    """

    def __init__(self, library: ctypes.CDLL, path: Path) -> None:
        self.path = path
        self._forward = library.mstpn_forward_step
        self._forward.restype = None
        self._forward.argtypes = [
            ctypes.c_int, ctypes.c_int, ctypes.c_int,
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_float, ctypes.c_float, ctypes.c_int,
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
        ]
        self._backward = library.mstpn_backward_step
        self._backward.restype = None
        self._backward.argtypes = [
            ctypes.c_int, ctypes.c_int, ctypes.c_int,
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
            ctypes.c_void_p, ctypes.c_float, ctypes.c_void_p, ctypes.c_void_p,
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
        ]
        self._partials: torch.Tensor | None = None
        self._bounds = torch.empty(0, dtype=torch.float32)
        self.threads = int(os.environ.get(THREADS_VARIABLE, "0") or 0)

    def forward_step(self, f_in, f_out, zn, u, gamma, lam, step, df_max, mode, h,
                     counts=None, df_out=None, zero_in=None, zero_out=None) -> None:
        """Run one step; arguments as in :func:`stpn.mstpn_ops.torch_forward_step`."""
        batch, n_post, n_pre = f_in.shape
        synapses = batch * n_post * n_pre
        threads = self.threads or torch.get_num_threads()
        self._forward(
            batch, n_post, n_pre,
            _pointer(f_in, "f_in", synapses), _pointer(f_out, "f_out", synapses),
            _pointer(zn, "zn", batch * n_pre),
            _pointer(u, "u", batch * n_post) if mode != MODE_UPDATE_GIVEN_H else None,
            _pointer(gamma, "gamma", n_post * n_pre), _pointer(lam, "lam", n_post * n_pre),
            float(step), float(df_max), int(mode), _pointer(h, "h", batch * n_post),
            _pointer(counts, "counts", batch * n_post, torch.int32),
            _pointer(df_out, "df_out", synapses),
            _pointer(zero_in, "zero_in", batch * n_post, torch.uint8),
            _pointer(zero_out, "zero_out", batch * n_post, torch.uint8),
            self._scratch(n_post + batch), threads,
        )

    def backward_step(self, f_prev, zn, h, gamma, lam, df_max, adjoint, grad_h, dpre,
                      dgamma, dlam, dzn, zero_prev=None) -> None:
        """Run one backward step; arguments as in :func:`stpn.mstpn_ops.torch_backward_step`."""
        batch, n_post, n_pre = f_prev.shape
        synapses = batch * n_post * n_pre
        threads = self.threads or torch.get_num_threads()
        partial_shape = (threads, batch, n_pre)
        if self._partials is None or self._partials.shape != partial_shape:
            self._partials = torch.empty(partial_shape, dtype=torch.float32)
        self._backward(
            batch, n_post, n_pre,
            _pointer(f_prev, "f_prev", synapses), _pointer(zn, "zn", batch * n_pre),
            _pointer(h, "h", batch * n_post), _pointer(gamma, "gamma", n_post * n_pre),
            _pointer(lam, "lam", n_post * n_pre), float(df_max),
            _pointer(adjoint, "adjoint", synapses), _pointer(grad_h, "grad_h", batch * n_post),
            _pointer(dpre, "dpre", batch * n_post), _pointer(dgamma, "dgamma", n_post * n_pre),
            _pointer(dlam, "dlam", n_post * n_pre), _pointer(dzn, "dzn", batch * n_pre),
            _pointer(self._partials, "partials", self._partials.numel()),
            _pointer(zero_prev, "zero_prev", batch * n_post, torch.uint8),
            self._scratch(n_post + batch), threads,
        )

    def _scratch(self, size: int) -> ctypes.c_void_p:
        """Return a pointer to at least `size` floats of scratch space (row bounds)."""
        if self._bounds.numel() < size:
            self._bounds = torch.empty(size, dtype=torch.float32)
        return ctypes.c_void_p(self._bounds.data_ptr())


@functools.cache
def load_kernel() -> MSTPNKernel | None:
    """Return the compiled kernel, or None (logged once) when it is disabled or cannot be
    built, in which case callers use the torch implementation."""
    if os.environ.get(DISABLE_VARIABLE, "").lower() == "torch":
        log.info("%s=torch: using the torch implementation of the m-STPN step", DISABLE_VARIABLE)
        return None

    compiler = os.environ.get("CC") or "cc"
    if shutil.which(compiler) is None:
        log.warning("no C compiler %r found: the m-STPN layer runs on torch operations, "
                    "several times slower; install gcc to use the fused kernel", compiler)
        return None
    try:
        path = _build(compiler, _compile_flags())
        return MSTPNKernel(ctypes.CDLL(str(path)), path)
    except (OSError, RuntimeError, subprocess.SubprocessError) as error:
        log.warning("building the m-STPN kernel failed, using torch operations instead: %s",
                    error)
        return None
