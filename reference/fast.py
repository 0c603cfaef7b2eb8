"""The SGD training step of TinyCNN and the MLP at the NumPy floor: the same numbers, less work.

:func:`tinycnn.reference.train.train` runs its steps through this module. Composing the nine
public ops of :mod:`tinycnn.reference.ops` (what :meth:`TinyCNN.loss_and_gradients` does) gives
the same numbers, bit for bit; the tests check it in float64 on several geometries and seeds.
The public ops stay what a student reads; this module is what a training run executes.

Where the public step loses time, and what is done here instead:

- **Checks.** Every public op validates its arguments on every call (about half of the Python
  calls of a step at batch 32). Here they run once: :class:`TrainingSteps` checks the model,
  the whole training set and its labels when it is built, and each batch size gets a
  :class:`_TinyCNNPlan` (or :class:`_MLPPlan`) once; the steps then call NumPy directly.
- **Gradients nobody uses.** The model's first layer throws its input gradient away; the
  public ``conv2d_backward`` and ``linear_backward`` compute it anyway (at batch 3000, about
  14 of TinyCNN's ~19 kFLOP per sample). The plans compute ``dw`` and ``db`` only.
- **Fresh memory.** Every public op allocates its outputs, and large fresh arrays cost page
  faults. A plan allocates its arrays once per batch size and every step writes into them
  (``out=``); the parameters, gradients and momentum live in one flat vector each, so the SGD
  update is three array operations instead of twelve.
- **Passes that can be fused.** Max-pooling commutes with ReLU (``max(relu(a), relu(b)) =
  relu(max(a, b))``), so TinyCNN's forward pass pools the convolution and applies ReLU to the
  pooled quarter of the values; the backward pass routes each window's gradient straight to
  the convolution output, masking it where the ReLU was off, instead of building the full
  pooling gradient and multiplying it by the ReLU mask.

Same numbers: every floating-point operation is the public op's own NumPy call on the same
shapes (the same BLAS product, the same reduction), written into a kept buffer; fusing only
moves integer and selection work, never changes a rounding. The one place where the fused
pooling could pick a different window element than the public path (a window whose maximum is
not positive: every ReLU output is 0 and the public path takes the first) is mapped to the
public choice. Special values: if a step's loss or any gradient is not finite (NaN or infinite
inputs, a diverging run), the step is recomputed with the public ops, so the rules for NaN and
infinity are exactly theirs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tinycnn.reference import ops
from tinycnn.reference.models import MLP, TinyCNN
from tinycnn.reference.optim import SGD

__all__ = ["TrainingSteps", "supports"]


def supports(model) -> bool:
    """True when ``model`` can train on the fast path: a TinyCNN or MLP on the reference ops.

    Subclasses (which may change a layer) and models on other ops (a student's submission,
    a deliberately buggy module) train through their own ops, step by step.
    """
    return type(model) in (TinyCNN, MLP) and model.ops is ops


class TrainingSteps:
    """SGD steps of ``model`` on one training set, one minibatch per call.

    Parameters
    ----------
    model : TinyCNN or MLP
        With the reference ops (see :func:`supports`). While the steps run, ``model.params``
        holds views into one flat parameter vector that the steps update in place; call
        :meth:`close` to put back the model's own arrays with the trained values in them.
    x : ndarray, shape (n, 1, S, S), the model's dtype
        Training images.
    labels : ndarray of int, shape (n,)
        Class of each image, in ``[0, n_classes)``.
    lr, momentum, weight_decay : float
        As :class:`tinycnn.reference.optim.SGD`, which does the update.

    Raises
    ------
    ValueError
        For a model the fast path does not support, images of the wrong shape or dtype, or
        labels out of range (the checks the public ops would make on every step, made once).
    """

    def __init__(
        self,
        model,
        x: np.ndarray,
        labels: np.ndarray,
        *,
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
    ):
        if not supports(model):
            raise ValueError(
                f"the fast training path runs TinyCNN and MLP on the reference ops, "
                f"not {type(model).__name__} on {getattr(model.ops, '__name__', model.ops)}"
            )
        x = model._check_images(x)
        if x.dtype != model.dtype:
            raise ValueError(f"images are {x.dtype} but the model is {model.dtype}")
        labels = np.asarray(labels)
        if labels.dtype.kind not in "iu" or labels.shape != (len(x),):
            raise ValueError(
                f"labels must be {len(x)} integers, got dtype {labels.dtype}, shape {labels.shape}"
            )
        n_classes = model.config["n_classes"]
        if len(labels) and not (labels.min() >= 0 and labels.max() < n_classes):
            raise ValueError(f"labels must lie in [0, {n_classes - 1}] for {n_classes} classes")
        self.model, self.x, self.labels = model, np.ascontiguousarray(x), labels
        self._data = _TrainingSet(self.x, labels.astype(np.intp, copy=False))

        # One flat vector each for the parameters and their gradients; the model's parameters
        # become views into the first while training runs (restored by close()).
        self._own_params = model.params
        sizes = [p.size for p in model.params.values()]
        self._flat = np.concatenate([p.ravel() for p in model.params.values()])
        self._flat_grads = np.zeros_like(self._flat)
        self._params = self._views(self._flat)
        self._grads = self._views(self._flat_grads)
        assert sum(sizes) == self._flat.size
        model.params = self._params
        # The update of reference.optim.SGD, applied once to the whole vector: it is
        # element-wise, so this is the update of every parameter on its own.
        self._optimizer = SGD(
            {"parameters": self._flat}, lr=lr, momentum=momentum, weight_decay=weight_decay
        )
        self._update_grads = {"parameters": self._flat_grads}
        self._plans: dict[int, object] = {}
        self.fallback_steps = 0  # steps recomputed with the public ops (non-finite values)

    def _views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        views, start = {}, 0
        for key, p in self.model.params.items():
            views[key] = flat[start : start + p.size].reshape(p.shape)
            start += p.size
        return views

    def _plan(self, N: int):
        plan = self._plans.get(N)
        if plan is None:
            if N == 0:
                raise ValueError("a minibatch needs at least one sample, got an empty batch")
            plan = self._plans[N] = _plan_for(self.model, N, self._params, self._grads, self._data)
        return plan

    def __call__(self, batch: np.ndarray) -> float:
        """One SGD step on the samples ``batch`` (indices into the training set); its loss."""
        plan = self._plan(len(batch))
        loss = plan.loss_and_gradients(batch)
        if not self._finite(loss):
            # NaN or infinity somewhere: the public ops decide what it becomes.
            self.fallback_steps += 1
            loss, grads = self.model.loss_and_gradients(self.x[batch], self.labels[batch])
            for key, gradient in grads.items():
                self._grads[key][...] = gradient
        self._optimizer.step(self._update_grads)
        return loss

    def evaluate(self, x: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        """:func:`tinycnn.reference.train.evaluate` of the model now, to the bit.

        The logits come from the plan of batch size ``len(x)`` (the forward half of a step);
        the loss from the public ``softmax_cross_entropy``. Logits that are not all finite,
        or no samples, go to the public ``evaluate``.
        """
        from tinycnn.reference.train import evaluate

        if len(x) == 0:
            return evaluate(self.model, x, labels)
        logits = self._plan(len(x)).logits(x)
        if not math.isfinite(np.add.reduce(logits, axis=None)):
            return evaluate(self.model, x, labels)
        loss, _ = ops.softmax_cross_entropy(logits, labels)
        return float(loss), float(np.mean(logits.argmax(axis=1) == labels))

    def _finite(self, loss: float) -> bool:
        """False if the loss or any gradient is NaN or infinite (then their sum is too).

        A sum that overflows from finite gradients only sends the step to the public ops,
        which give the same numbers, more slowly.
        """
        return math.isfinite(loss) and math.isfinite(np.add.reduce(self._flat_grads))

    def phases(self, batch: np.ndarray) -> list[tuple[str, Callable[[], object]]]:
        """The parts of one step on ``batch``, in order: ``(name, function)`` pairs.

        For measuring where a step's time goes (``tinycnn bench``). Each function repeats its
        part of the step on the state the previous parts left behind: one full step runs
        first, so every buffer holds real numbers. The last part, the SGD update, changes the
        parameters every time it runs: time phases on steps made for the purpose.
        """
        self(batch)
        plan = self._plans[len(batch)]
        loss = plan.loss
        return [
            *plan.phases(batch),
            ("non-finite check", lambda: self._finite(loss)),
            ("SGD update", lambda: self._optimizer.step(self._update_grads)),
        ]

    def close(self) -> None:
        """Copy the trained values into the model's own parameter arrays and give them back."""
        for key, array in self._own_params.items():
            array[...] = self._params[key]
        self.model.params = self._own_params


def _plan_for(model, N: int, params, grads, data: _TrainingSet):
    """The plan of one batch size; ``params`` and ``grads`` are the views the steps update."""
    if type(model) is TinyCNN:
        return _TinyCNNPlan(model, N, params, grads, data)
    return _MLPPlan(model, N, params, grads, data)


@dataclass(frozen=True)
class _TrainingSet:
    """The arrays the steps gather minibatches from."""

    x: np.ndarray  # n, 1, S, S
    labels: np.ndarray  # n: each sample's class


def _cross_entropy(plan) -> float:
    """:func:`ops.softmax_cross_entropy` of ``plan.logits_buffer`` and ``plan.labels``, into
    ``plan``'s buffers; leaves ``plan.dlogits``.

    The same operations in the same order: subtract the row maximum, log-sum-exp, log-softmax,
    the batch mean of the picked entries, then softmax minus one-hot over N.
    """
    logits, N = plan.logits_buffer, len(plan.labels)
    shifted, row, log_probs, dlogits = plan.shifted, plan.row, plan.log_probs, plan.dlogits
    _row_reduce(np.maximum, logits, row, plan.logits_columns)  # N, 1
    np.subtract(logits, row, out=shifted)  # N, K
    np.exp(shifted, out=log_probs)  # N, K (a scratch use of log_probs)
    _row_reduce(np.add, log_probs, row, plan.exp_columns)  # N, 1
    np.log(row, out=row)  # log-sum-exp
    np.subtract(shifted, row, out=log_probs)  # N, K
    picked = np.add(plan.row_start, plan.labels, out=plan.picked)  # flat position of each label
    loss = -(np.add.reduce(log_probs.take(picked, mode="clip")) / N)  # ndarray.sum's reduction
    np.exp(log_probs, out=dlogits)  # softmax
    dlogits.reshape(-1)[picked] -= 1  # minus one-hot
    np.divide(dlogits, N, out=dlogits)
    plan.loss = float(loss)
    return plan.loss


#: Rows shorter than this are reduced one element after the other by NumPy (longer ones in
#: pairwise blocks of 8), so a loop over the columns gives the same bits.
_SEQUENTIAL_ROW = 8


def _row_reduce(ufunc, a: np.ndarray, out: np.ndarray, columns) -> None:
    """``ufunc.reduce(a, axis=1, keepdims=True, out=out)``, to the bit.

    For many short rows NumPy's reduction runs one tiny loop per row; ``columns`` (views of
    the columns of ``a``, only for rows shorter than :data:`_SEQUENTIAL_ROW`) does the same
    operations column by column, a few long loops instead: ``((a0 op a1) op a2) ...``, the
    order NumPy uses on them. None: NumPy's reduction.
    """
    if columns is None:
        ufunc.reduce(a, axis=1, keepdims=True, out=out)
        return
    ufunc(columns[0], columns[1], out=out)
    for column in columns[2:]:
        ufunc(out, column, out=out)


class _Buffers:
    """The arrays of the cross-entropy, shared by both plans."""

    def __init__(self, N: int, n_classes: int, dtype):
        self.logits_buffer = np.empty((N, n_classes), dtype)
        self.shifted = np.empty((N, n_classes), dtype)
        self.log_probs = np.empty((N, n_classes), dtype)
        self.dlogits = np.empty((N, n_classes), dtype)
        self.row = np.empty((N, 1), dtype)
        self.row_start = np.arange(N) * n_classes
        self.picked = np.empty(N, dtype=np.result_type(self.row_start, np.intp))
        self.labels = np.empty(N, dtype=np.intp)
        # Column by column when rows are short (measured faster at batch 32, 128, 3000; K = 3).
        by_columns = 2 <= n_classes < _SEQUENTIAL_ROW
        self.logits_columns = self._columns(self.logits_buffer) if by_columns else None
        self.exp_columns = self._columns(self.log_probs) if by_columns else None

    @staticmethod
    def _columns(a: np.ndarray) -> list[np.ndarray]:
        return [a[:, k : k + 1] for k in range(a.shape[1])]  # views, N x 1 each


class _TinyCNNPlan(_Buffers):
    """Buffers and index arrays of one TinyCNN step at batch size ``N``.

    Conv (F filters, K x K, no padding, stride 1) -> ReLU -> max-pool (size = stride = p) ->
    linear, on ``(N, 1, S, S)`` images; the arithmetic of ``TinyCNN.loss_and_gradients``.

    The convolution takes one of two routes, chosen once per plan:

    - "rows": output row ``i`` of every image reads image rows ``i .. i+K-1``, which lie
      side by side in memory: ``K*S`` values from position ``i*S``. So the output rows are
      one matrix product each, ``band (F*H, K*S) @ x_rows (K*S, N)``, read straight from the
      images (a strided view, no copy), with ``band[(f, j), (u, c)] = w[f, 0, u, c - j]``
      (zero outside the kernel). No patches are gathered; the product has zeros to skip.
    - "patches": the public op's im2col and one product per image.

    A product's sum runs over the kernel in the same order either way, and the zeros add
    nothing, so the two give the same bits whenever the BLAS sums each dot product in order;
    whether it does depends on its kernels for the shapes at hand. So the plan runs both on
    random numbers when it is built, and takes "rows" only if every bit agrees.
    """

    def __init__(self, model: TinyCNN, N: int, params, grads, data: _TrainingSet | None):
        config, dtype = model.config, model.dtype
        F, K, S, p = (config[k] for k in ("n_filters", "kernel_size", "image_size", "pool_size"))
        C = 1
        super().__init__(N, config["n_classes"], dtype)
        H = ops.conv_output_size(S, K)  # conv output side
        P = ops.conv_output_size(H, p, 0, p)  # pooled side
        self.sizes = (N, C, S, F, K, H, p, P)
        self.dtype = np.dtype(dtype)
        self.data = data
        # Views into the flat parameter and gradient vectors (the update changes them in place).
        self.conv_w, self.conv_b = params["conv.weight"], params["conv.bias"]
        self.conv_w_flat = self.conv_w.reshape(-1)
        self.conv_b_column = self.conv_b.reshape(F, 1)
        self.fc_w, self.fc_b = params["fc.weight"], params["fc.bias"]
        self.fc_w_T = self.fc_w.T
        self.conv_dw = grads["conv.weight"].reshape(F, C * K * K)
        self.conv_db, self.fc_dw, self.fc_db = (
            grads["conv.bias"],
            grads["fc.weight"],
            grads["fc.bias"],
        )

        self.x = np.empty((N, C, S, S), dtype)
        self.x_flat = self.x.reshape(N, C * S * S)
        # Convolution weight gradient: the public op's route for this image size.
        placement_entries = (C * K * K) * (H * H) * (C * S * S)
        self.dense = placement_entries <= ops.DENSE_BACKWARD_MAX_ENTRIES
        if self.dense:
            self.placement_T = ops._placement(C, S, S, K, K, 1, H, H, self.dtype).T
            self.dM = np.empty((F * H * H, C * S * S), dtype)
            self.dM_by_filter = self.dM.reshape(F, -1)
        else:
            self.patch_dw = np.empty((N, F, C * K * K), dtype)
        # Route "patches": im2col through the cached window index, one product per image.
        self.window = ops._window_index(C, S, S, K, K, 1, H, H)  # C*K*K, H*H
        self.columns = np.empty((N, C * K * K, H * H), dtype)
        self.columns_T = self.columns.transpose(0, 2, 1)
        # Route "rows" (see the class docstring).
        f, j, u, v = np.ix_(np.arange(F), np.arange(H), np.arange(K), np.arange(K))
        self.band = np.zeros((F * H, K * S), dtype)
        self.band_flat = self.band.reshape(-1)
        self.band_position = ((f * H + j) * (K * S) + u * S + j + v).ravel()  # F*H*K*K
        self.band_weight = np.broadcast_to((f * K + u) * K + v, (F, H, K, K)).ravel()
        self.band_values = np.empty(self.band_weight.shape, dtype)
        item = self.x.itemsize
        self.x_rows = np.lib.stride_tricks.as_strided(  # H, K*S, N: rows i..i+K-1 of every image
            self.x, shape=(H, K * S, N), strides=(S * item, item, S * S * item), writeable=False
        )
        self.conv_rows = np.empty((H, F * H, N), dtype)  # i, (f, j), n
        self.conv_rows_by_filter = self.conv_rows.reshape(H, F, H * N)
        # where each (n, f, i, j) of the convolution output lives, for each route
        n, f, i, j = np.ix_(np.arange(N), np.arange(F), np.arange(H), np.arange(H))
        rows_position = ((i * F + f) * H + j) * N + n  # N, F, H, H
        self.conv = np.empty((N, F, H * H), dtype)

        # Pooling windows of the convolution output: one row per window element, columns in
        # the order of the flat features (n, f, pi, pj), as the public op.
        public_index = ops._pool_index(N * F, H, H, p, p, P, P)  # p*p, N*F*P*P
        self.pool_start = public_index[0]  # first element of each window, public layout
        self.pool_offsets = ops._window_index(1, H, H, p, p, p, P, P)[:, 0]  # p*p
        self.countdown = ops._countdown(p * p)
        # weight w of the first maximum (p*p for element 0, ..., 1 for the last) -> its offset
        # (weight 0 only for a window holding NaN, a step the public ops redo)
        self.offset_by_weight = np.concatenate([self.pool_offsets[:1], self.pool_offsets[::-1]])
        self.windows = np.empty(public_index.shape, dtype)
        self.window_max = np.empty(N * F * P * P, dtype)
        self.pooled = np.empty((N, F * P * P), dtype)  # ReLU of the maxima: the flat features
        self.window_max_by_sample = self.window_max.reshape(self.pooled.shape)
        self.is_max = np.empty(public_index.shape, bool)
        self.weighted = np.empty(public_index.shape, self.countdown.dtype)
        self.first = np.empty(N * F * P * P, self.countdown.dtype)
        self.positive = np.empty(N * F * P * P, bool)
        self.offset = np.empty(N * F * P * P, self.offset_by_weight.dtype)
        self.winner = np.empty(N * F * P * P, np.intp)
        self.dpooled = np.empty((N, F * P * P), dtype)
        self.dpooled_flat = self.dpooled.reshape(-1)
        self.dconv = np.zeros((N, F, H * H), dtype)
        self.dconv_flat = self.dconv.reshape(-1)
        self.dconv_by_sample_T = self.dconv.reshape(N, -1).T
        self.conv_db_by_position = np.empty((F, H * H), dtype)

        self.route = "rows" if self.dense and self._rows_agree_with_patches() else "patches"
        if self.route == "rows":
            self.conv_source = self.conv_rows.reshape(-1)
            self.pool_index = rows_position.reshape(-1).take(public_index)
        else:
            self.conv_source = self.conv.reshape(-1)
            self.pool_index = public_index

    def _rows_agree_with_patches(self) -> bool:
        """Both convolution routes on random numbers in this plan's buffers: same bits?"""
        rng = np.random.default_rng(0)
        N, C, S, F, K, H, p, P = self.sizes
        w = rng.standard_normal((F, C, K, K)).astype(self.dtype)
        b = np.zeros(F, self.dtype)
        self.x[...] = rng.standard_normal(self.x.shape)
        by_rows = self._conv_rows(w.reshape(-1), b.reshape(F, 1))
        by_rows = by_rows.reshape(H, F, H, N).transpose(3, 1, 0, 2)
        by_patches = self._conv_patches(w, b).reshape(N, F, H, H)
        unsigned = np.dtype(f"u{self.dtype.itemsize}")
        return np.array_equal(by_rows.view(unsigned), by_patches.view(unsigned))

    def _conv_patches(self, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        """conv2d_forward as the public op computes it: ``(N, F, H*H)``."""
        N, C, S, F, K, H, p, P = self.sizes
        columns = self.x_flat.take(self.window, axis=1, out=self.columns, mode="clip")
        conv = np.matmul(w.reshape(F, C * K * K), columns, out=self.conv)  # N, F, H*H
        np.add(conv, b.reshape(F, 1), out=conv)
        return conv

    def _conv_rows(self, w_flat: np.ndarray, b_column: np.ndarray) -> np.ndarray:
        """conv2d_forward by output rows: ``(H, F*H, N)``, indexed ``[i, (f, j), n]``.

        ``w_flat`` is the weight raveled, ``b_column`` the bias as ``(F, 1)``.
        """
        # band[(f, j), (u, c)] = w[f, 0, u, c - j], then one product per output row i
        w_flat.take(self.band_weight, out=self.band_values, mode="clip")
        self.band_flat[self.band_position] = self.band_values
        conv = np.matmul(self.band, self.x_rows, out=self.conv_rows)  # H, F*H, N
        np.add(self.conv_rows_by_filter, b_column, out=self.conv_rows_by_filter)
        return conv

    def loss_and_gradients(self, batch) -> float:
        """Loss of the minibatch ``batch`` (indices); its gradients written into ``grads``."""
        self.gather(batch)
        self.conv_forward()
        self.pool_relu_forward()
        self.linear_forward()
        loss = _cross_entropy(self)
        self.linear_backward()
        self.pool_relu_backward()
        self.conv_backward()
        return loss

    def phases(self, batch):
        """The parts of :meth:`loss_and_gradients`, as ``(name, function)`` pairs."""
        return [
            ("gather the minibatch", lambda: self.gather(batch)),
            ("conv2d forward", self.conv_forward),
            ("maxpool2d + relu forward", self.pool_relu_forward),
            ("linear forward", self.linear_forward),
            ("softmax_cross_entropy", lambda: _cross_entropy(self)),
            ("linear backward", self.linear_backward),
            ("maxpool2d + relu backward", self.pool_relu_backward),
            ("conv2d backward (dw, db; no dx)", self.conv_backward),
        ]

    def gather(self, batch) -> None:
        """The minibatch's labels and images, from the training set's."""
        # mode="raise" checks every index (IndexError); the image gather then needs no check
        # ("wrap" takes negative indices as NumPy indexing does, and does not buffer its output).
        self.data.labels.take(batch, out=self.labels)  # N
        self.data.x.take(batch, axis=0, out=self.x, mode="wrap")  # N, C, S, S

    def logits(self, x) -> np.ndarray:
        """The forward pass on all of ``x (N, 1, S, S)``: logits ``(N, n_classes)``."""
        np.copyto(self.x, x)
        self.conv_forward()
        self.pool_relu_forward()
        self.linear_forward()
        return self.logits_buffer

    def conv_forward(self) -> None:
        """conv2d_forward, into ``self.conv_source`` (the layout of the route)."""
        if self.route == "rows":
            self._conv_rows(self.conv_w_flat, self.conv_b_column)  # H, F*H, N
        else:
            self._conv_patches(self.conv_w, self.conv_b)  # N, F, H*H

    def pool_relu_forward(self) -> None:
        """Max-pool, then ReLU (they commute): ReLU runs on the pooled values only."""
        windows = self.conv_source.take(self.pool_index, out=self.windows, mode="clip")
        np.maximum.reduce(windows, axis=0, out=self.window_max)  # N*F*P*P
        np.maximum(self.window_max_by_sample, 0, out=self.pooled)  # N, F*P*P: the features

    def linear_forward(self) -> None:
        np.matmul(self.pooled, self.fc_w_T, out=self.logits_buffer)  # N, n_classes
        np.add(self.logits_buffer, self.fc_b, out=self.logits_buffer)

    def linear_backward(self) -> None:
        """linear_backward: dx (into ``self.dpooled``), dw, db."""
        dlogits = self.dlogits
        np.matmul(dlogits, self.fc_w, out=self.dpooled)  # N, F*P*P
        np.matmul(dlogits.T, self.pooled, out=self.fc_dw)
        np.add.reduce(dlogits, axis=0, out=self.fc_db)

    def pool_relu_backward(self) -> None:
        """maxpool2d_backward and relu_backward in one, into ``self.dconv`` (public layout).

        Each window's gradient goes to its first maximum, times the ReLU mask: a window whose
        maximum is not positive had ReLU output 0 everywhere and passes no gradient (the
        public path sends it to the window's first element, where relu_backward stops it).
        """
        windows, window_max = self.windows, self.window_max
        # The public test is "not below the maximum" (~(x < max)), which differs from "equal
        # to the maximum" only for NaN, and a NaN makes the loss NaN: that step is redone by
        # the public ops.
        is_max = np.equal(windows, window_max, out=self.is_max)  # p*p, N*F*P*P
        weighted = np.multiply(is_max, self.countdown, out=self.weighted)
        first = np.maximum.reduce(weighted, axis=0, out=self.first)  # p*p - first max
        offset = self.offset_by_weight.take(first, out=self.offset, mode="clip")
        winner = np.add(self.pool_start, offset, out=self.winner)
        positive = np.greater(window_max, 0, out=self.positive)  # the ReLU was on
        dflat = np.multiply(self.dpooled_flat, positive, out=self.dpooled_flat)  # dy * (x > 0)
        self.dconv.fill(0)
        self.dconv_flat[winner] = dflat  # windows do not overlap (stride = size)

    def conv_backward(self) -> None:
        """conv2d_backward without dx: db, then dw by the public op's route."""
        N, C, S, F, K, H, p, P = self.sizes
        db = np.add.reduce(self.dconv, axis=0, out=self.conv_db_by_position)  # F, H*H
        np.add.reduce(db, axis=1, out=self.conv_db)
        if self.dense:
            np.matmul(self.dconv_by_sample_T, self.x_flat, out=self.dM)  # F*H*H, C*S*S
            np.matmul(self.dM_by_filter, self.placement_T, out=self.conv_dw)
        else:  # the columns of the forward pass (route "patches": "rows" needs dense)
            products = np.matmul(self.dconv, self.columns_T, out=self.patch_dw)
            np.add.reduce(products, axis=0, out=self.conv_dw)


class _MLPPlan(_Buffers):
    """Buffers of one MLP step at batch size ``N``: linear -> ReLU -> linear."""

    def __init__(self, model: MLP, N: int, params, grads, data: _TrainingSet | None):
        config, dtype = model.config, model.dtype
        super().__init__(N, config["n_classes"], dtype)
        S, hidden = config["image_size"], config["hidden"]
        self.data = data
        self.x = np.empty((N, 1, S, S), dtype)
        self.x_flat = self.x.reshape(N, S * S)
        self.pre = np.empty((N, hidden), dtype)
        self.hidden = np.empty((N, hidden), dtype)
        self.dhidden = np.empty((N, hidden), dtype)
        self.mask = np.empty((N, hidden), bool)
        self.hidden_w, self.hidden_b = params["hidden.weight"], params["hidden.bias"]
        self.out_w, self.out_b = params["out.weight"], params["out.bias"]
        self.grads = grads

    def loss_and_gradients(self, batch) -> float:
        """Loss of the minibatch ``batch`` (indices); its gradients written into ``grads``."""
        self.gather(batch)
        self.forward()
        loss = _cross_entropy(self)
        self.backward()
        return loss

    def phases(self, batch):
        """The parts of :meth:`loss_and_gradients`, as ``(name, function)`` pairs."""
        return [
            ("gather the minibatch", lambda: self.gather(batch)),
            ("linear + relu + linear forward", self.forward),
            ("softmax_cross_entropy", lambda: _cross_entropy(self)),
            ("linear + relu + linear backward (no dx)", self.backward),
        ]

    def gather(self, batch) -> None:
        self.data.labels.take(batch, out=self.labels)  # checks every index (mode "raise")
        self.data.x.take(batch, axis=0, out=self.x, mode="wrap")

    def logits(self, x) -> np.ndarray:
        """The forward pass on all of ``x (N, 1, S, S)``: logits ``(N, n_classes)``."""
        np.copyto(self.x, x)
        self.forward()
        return self.logits_buffer

    def forward(self) -> None:
        pre = np.matmul(self.x_flat, self.hidden_w.T, out=self.pre)  # N, hidden
        pre += self.hidden_b
        hidden = np.maximum(pre, 0, out=self.hidden)
        logits = np.matmul(hidden, self.out_w.T, out=self.logits_buffer)  # N, n_classes
        logits += self.out_b

    def backward(self) -> None:
        dlogits, grads = self.dlogits, self.grads
        dhidden = np.matmul(dlogits, self.out_w, out=self.dhidden)  # N, hidden
        np.matmul(dlogits.T, self.hidden, out=grads["out.weight"])
        np.add.reduce(dlogits, axis=0, out=grads["out.bias"])
        dhidden *= np.greater(self.pre, 0, out=self.mask)  # relu_backward: dy * (x > 0)
        np.matmul(dhidden.T, self.x_flat, out=grads["hidden.weight"])  # no dx: nobody uses it
        np.add.reduce(dhidden, axis=0, out=grads["hidden.bias"])
