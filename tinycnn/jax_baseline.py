"""The baseline a performance-minded user compares against: TinyCNN and the MLP trained by JAX.

One epoch of SGD is one call of a jitted function whose minibatch loop is a ``jax.lax.scan``
(the whole epoch compiled as one XLA program, no Python per step); a last, smaller minibatch
gets one more jitted step, as it is a different shape. The layers, loss and update are those of
the NumPy reference (``torch.optim.SGD``'s momentum and weight decay), written with
``jax.lax.conv_general_dilated``, ``jax.nn.log_softmax`` and ``jax.value_and_grad``, in one of
two :data:`VARIANTS`:

- ``"textbook"``: max-pooling by ``jax.lax.reduce_window`` (the JAX idiom, as ``flax``'s
  ``max_pool``), each step gathering its minibatch from the training set;
- ``"tuned"``: max-pooling as a reshape and a ``max`` over the window axes (its gradient
  fuses into a few element-wise loops, where ``reduce_window``'s is a select-and-scatter),
  and the epoch's minibatches gathered in one go before the scan. Measured here at batch 32 it
  is about twice as fast as the textbook version.

JAX is optional (``pip install "tinycnn[bench]"``): nothing else in the project imports this
module, and :func:`available` says whether it can run. XLA's CPU thread pool is limited to one
thread through ``XLA_FLAGS`` (as the benchmark does for NumPy and PyTorch); that only takes
effect if JAX was not imported before :func:`import_jax` ran.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Mapping

import numpy as np

__all__ = ["SINGLE_THREAD_FLAGS", "VARIANTS", "available", "epoch_function", "import_jax"]

#: The ways of writing the JAX epoch (see the module docstring).
VARIANTS = ("textbook", "tuned")

#: XLA flags for one CPU thread: no multi-threaded Eigen, one intra-op thread.
SINGLE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def available() -> bool:
    """True when JAX is installed (without importing it)."""
    return importlib.util.find_spec("jax") is not None


_threads_note: list[str] = []  # how the threads were set, by the first import_jax()


def import_jax():
    """Import JAX on one CPU thread; returns the ``jax`` module and how threads were set."""
    if not _threads_note:
        if "jax" not in sys.modules:
            flags = os.environ.get("XLA_FLAGS", "")
            if SINGLE_THREAD_FLAGS not in flags:
                os.environ["XLA_FLAGS"] = f"{flags} {SINGLE_THREAD_FLAGS}".strip()
            os.environ.setdefault("JAX_PLATFORMS", "cpu")
            _threads_note.append(f"XLA_FLAGS={SINGLE_THREAD_FLAGS!r}, set before importing JAX")
        else:
            _threads_note.append("JAX was imported before the benchmark: its own thread settings")
    import jax

    return jax, _threads_note[0]


def _forward(model_name: str, params: Mapping, x, jnp, lax, variant: str):
    """Logits of TinyCNN (conv 3x3 -> ReLU -> 2x2 max-pool -> linear) or the MLP."""
    if model_name == "TinyCNN":
        conv = lax.conv_general_dilated(
            x, params["conv.weight"], (1, 1), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW")
        )
        conv = conv + params["conv.bias"][None, :, None, None]
        relu = jnp.maximum(conv, 0)
        if variant == "textbook":
            pooled = lax.reduce_window(relu, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        else:  # the 6x6 maps as 3x3 windows of 2x2
            N, F, H, W = relu.shape
            pooled = relu.reshape(N, F, H // 2, 2, W // 2, 2).max(axis=(3, 5))
        flat = pooled.reshape(x.shape[0], -1)
        return flat @ params["fc.weight"].T + params["fc.bias"]
    flat = x.reshape(x.shape[0], -1)
    hidden = jnp.maximum(flat @ params["hidden.weight"].T + params["hidden.bias"], 0)
    return hidden @ params["out.weight"].T + params["out.bias"]


def epoch_function(
    model_name: str,
    params: Mapping[str, np.ndarray],
    x: np.ndarray,
    labels: np.ndarray,
    batches: list[np.ndarray],
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    variant: str = "textbook",
) -> Callable[[], np.ndarray]:
    """A function that trains one epoch over ``batches`` and returns the step losses.

    ``model_name`` is "TinyCNN" or "MLP (18 hidden)" (any name but "TinyCNN" is the MLP);
    ``params`` are the starting weights (the reference's names and layouts), ``x`` and
    ``labels`` the training set, ``batches`` the indices of each minibatch (all of one size
    but possibly the last); ``variant`` one of :data:`VARIANTS`. Each call continues from the
    state the last one left, and waits for the result (``block_until_ready``), so a timer
    around it measures the work.
    """
    jax, _ = import_jax()
    import jax.numpy as jnp
    from jax import lax

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if any(len(batch) == 0 for batch in batches):
        raise ValueError("every minibatch needs at least one sample")
    size = len(batches[0])
    full = [batch for batch in batches if len(batch) == size]
    rest = batches[len(full) :]
    if any(len(batch) == size for batch in rest) or len(rest) > 1:
        raise ValueError("minibatches must share one size, but for the last")

    def loss_fn(params, x_batch, y_batch):
        logits = _forward(model_name, params, x_batch, jnp, lax, variant)
        log_probs = jax.nn.log_softmax(logits, axis=1)
        return -jnp.mean(jnp.take_along_axis(log_probs, y_batch[:, None], axis=1))

    def update(params, buffers, x_batch, y_batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, x_batch, y_batch)
        new_params, new_buffers = {}, {}
        for key, p in params.items():
            g = grads[key] + weight_decay * p  # torch.optim.SGD, dampening 0, no Nesterov
            buffer = momentum * buffers[key] + g  # the first step: 0 * momentum + g = g
            new_params[key], new_buffers[key] = p - lr * buffer, buffer
        return new_params, new_buffers, loss

    def step(state, index):  # textbook: each step gathers its minibatch
        params, buffers, x_all, y_all = state
        params, buffers, loss = update(params, buffers, x_all[index], y_all[index])
        return (params, buffers, x_all, y_all), loss

    def step_on_batch(state, batch):  # tuned: the minibatches come gathered
        params, buffers = state
        params, buffers, loss = update(params, buffers, *batch)
        return (params, buffers), loss

    @jax.jit
    def scan_epoch(params, buffers, x_all, y_all, indices):
        if variant == "textbook":
            (params, buffers, _, _), losses = lax.scan(
                step, (params, buffers, x_all, y_all), indices
            )
        else:
            minibatches = (x_all[indices], y_all[indices])  # n_batches, size, ...
            (params, buffers), losses = lax.scan(step_on_batch, (params, buffers), minibatches)
        return params, buffers, losses

    single_step = jax.jit(step)
    state = {
        "params": {key: jnp.asarray(value) for key, value in params.items()},
        "buffers": {key: jnp.zeros_like(jnp.asarray(value)) for key, value in params.items()},
    }
    x_all, y_all = jnp.asarray(x), jnp.asarray(labels.astype(np.int32))
    indices = jnp.asarray(np.stack(full).astype(np.int32))
    rest_index = jnp.asarray(rest[0].astype(np.int32)) if rest else None

    def run_epoch() -> np.ndarray:
        params, buffers, losses = scan_epoch(
            state["params"], state["buffers"], x_all, y_all, indices
        )
        losses = [losses]
        if rest_index is not None:
            (params, buffers, _, _), loss = single_step((params, buffers, x_all, y_all), rest_index)
            losses.append(loss[None])
        state["params"], state["buffers"] = params, buffers
        return np.asarray(jax.block_until_ready(jnp.concatenate(losses)))

    return run_epoch
