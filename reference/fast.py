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
- **Layouts.** The convolution runs by output rows, samples last (one product per output
  row, read straight from the images), and at large batches the pooling works on strided
  views of that layout instead of gathering its windows; the weight gradient's product then
  runs by output row too, on the pixels each row read (see :class:`_TinyCNNPlan`).

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
        x_max_abs = float(np.abs(self.x).max(initial=0)) if self.x.size else 0.0
        self._data = _TrainingSet(self.x, labels.astype(np.intp, copy=False), x_max_abs)

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
    x_max_abs: float  # largest |pixel| (inf or NaN when the images hold such values)


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


#: Pooling "views" (strided views of the convolution output instead of a gather) from this
#: batch size on: more NumPy calls per step, each on long rows (measured, see docs/bench.md).
WINDOW_VIEWS_MIN_BATCH = 256

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
    whether it does depends on its kernels for the shapes at hand.

    Route "rows" then pools in one of two ways:

    - "gather": every window element gathered through a kept index into the public window
      order (``p*p`` rows of ``N*F*P*P``), the gradient scattered into the public layout;
      fewest NumPy calls, best at small batches.
    - "views" (from :data:`WINDOW_VIEWS_MIN_BATCH` on): the window elements are strided
      views of the rows (samples last, contiguous), so the maxima and the first-maximum test
      are element-wise calls on long rows, with no gather; the gradient goes to the layout
      ``(n, i, f, j)``, where the weight gradient's product runs by output row ("band": the
      ``K*S`` pixels row ``i`` reads, about a third of the public product's work) or whole
      ("full"), see :meth:`_conv_backward_views`.

    Whether a configuration gives the public bits depends on the BLAS kernels for the shapes
    at hand, so the plan runs them on random numbers when it is built (a whole step each,
    against route "patches", which is the public op's arithmetic) and keeps the first that
    agrees in every bit; "patches" if none does.
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

        # Pooling "gather": the windows gathered through an index, from the public layout
        # (route "patches") or from the rows (route "rows").
        self.public_index = public_index
        self.dense_windows = self.dense and N >= WINDOW_VIEWS_MIN_BATCH
        if self.dense:
            n, f, i, j = np.ix_(np.arange(N), np.arange(F), np.arange(H), np.arange(H))
            self.rows_pool_index = (((i * F + f) * H + j) * N + n).reshape(-1).take(public_index)
        if self.dense_windows:
            self._window_buffers(N, F, H, p, P, dtype)
        self._set_route("patches", "gather", None)
        if not (self.dense and self._rows_agree_with_patches()):  # it keeps what agreed
            self._set_route("patches", "gather", None)

    def _set_route(self, route: str, pooling: str, dM_route: str | None) -> None:
        """Route "patches" or "rows"; pooling "gather" or "views"; for "views", "band"/"full"."""
        self.route, self.pooling, self.dM_route = route, pooling, dM_route
        if route == "rows":
            self.conv_source, self.pool_index = self.conv_rows.reshape(-1), self.rows_pool_index
        else:
            self.conv_source, self.pool_index = self.conv.reshape(-1), self.public_index

    def _window_buffers(self, N: int, F: int, H: int, p: int, P: int, dtype) -> None:
        """Views, buffers and index arrays of pooling "views" (route "rows" only)."""
        covered = P * p  # conv rows and columns that some pooling window reads
        FH = F * H
        by_row = self.conv_rows.reshape(H, F, H, N)[:covered, :, :covered]
        by_row = by_row.reshape(P, p, F, P, p, N)  # pi, a, f, pj, b, n
        # Element (a, b) of every window, in the window's row-major order, as (f, pi, pj, n):
        # the flat features' order with the samples last.
        self.window_elements = [
            by_row[:, a, :, :, b].transpose(1, 0, 2, 3) for a in range(p) for b in range(p)
        ]
        self.window_elements_stacked = by_row.transpose(1, 4, 2, 0, 3, 5)  # a, b, f, pi, pj, n
        self.window_max_rows = np.empty((F, P, P, N), dtype)
        self.window_max_rows_2d = self.window_max_rows.reshape(F * P * P, N)
        self.pooled_rows = np.empty((F * P * P, N), dtype)  # ReLU of the maxima, (f, pi, pj), n
        self.is_max_rows = np.empty((p, p, F, P, P, N), bool)
        self.is_max_rows_flat = self.is_max_rows.reshape(p * p, -1)
        self.first_rows_2d = self.first.reshape(F * P * P, N)
        self.first_by_sample = np.empty((N, F * P * P), np.intp)
        # The gradient of the convolution output in the layout (n, i, f, j): for output row i,
        # the F*H gradients (f, j) lie side by side, as the rows of the band product below.
        self.dconv_rows = np.zeros((N, H, F, H), dtype)
        self.dconv_rows_flat = self.dconv_rows.reshape(-1)
        self.dconv_rows_2d = self.dconv_rows.reshape(N, H * FH)
        # Where the window (n, f, pi, pj) (flat features' order) starts in dconv_rows, and
        # how far its element of weight w (p*p for the first, ..., 1 for the last) lies from
        # there (weight 0 only for a window holding NaN, a step the public ops redo).
        n, f, i, j = np.ix_(np.arange(N), np.arange(F), np.arange(P) * p, np.arange(P) * p)
        self.pool_start_rows = (((n * H + i) * F + f) * H + j).reshape(-1)
        element = p * p - np.arange(p * p + 1)
        self.offset_rows = np.where(element < p * p, element // p * FH + element % p, 0)
        self.db_by_position_rows = np.empty((H, F, H), dtype)
        # Weight gradient, route "band": output row i's gradients (f, j) times the image rows
        # i .. i+K-1 it read, K*S pixels from position i*S (a strided view of the images).
        C, S, K = 1, self.sizes[2], self.sizes[4]
        item = self.x.itemsize
        self.x_band = np.lib.stride_tricks.as_strided(  # H, N, K*S
            self.x, shape=(H, N, K * S), strides=(S * item, S * S * item, item), writeable=False
        )
        self.dconv_band = self.dconv_rows.reshape(N, H, FH).transpose(1, 2, 0)  # H, F*H, N
        self.dM_band = np.empty((H, FH, K * S), dtype)
        # dM[(f, i, j), (i + u) * S + j + v] = dM_band[i, (f, j), u * S + j + v]: the entries
        # the placement matrix reads; the others stay 0.
        f, i, j, u, v = np.ix_(*(np.arange(m) for m in (F, H, H, K, K)))
        self.dM_public_position = (((f * H + i) * H + j) * (S * S) + (i + u) * S + j + v).ravel()
        self.dM_band_position = (((i * F + f) * H + j) * (K * S) + u * S + j + v).ravel()
        self.dM_public = np.zeros((F * H * H, C * S * S), dtype)
        self.dM_public_by_filter = self.dM_public.reshape(F, -1)
        # Weight gradient, route "full": the public product with its rows in the order (i, f, j).
        self.dM_rows = np.empty((H * FH, C * S * S), dtype)
        self.dM_full = np.empty((F, H, H, C * S * S), dtype)  # dM_rows in the public order
        self.dM_full_by_filter = self.dM_full.reshape(F, -1)

    def _rows_agree_with_patches(self) -> bool:
        """Both routes on random numbers in this plan's buffers: the same bits?

        The convolution output first, then a whole step (loss and every gradient) of each
        configuration of route "rows" against route "patches": the first that agrees is kept
        (see :meth:`_set_route`). The model's gradient arrays are put back as they were.
        """
        rng = np.random.default_rng(0)
        N, C, S, F, K, H, p, P = self.sizes
        w = rng.standard_normal((F, C, K, K)).astype(self.dtype)
        b = np.zeros(F, self.dtype)
        self.x[...] = rng.standard_normal(self.x.shape)
        by_rows = self._conv_rows(w.reshape(-1), b.reshape(F, 1))
        by_rows = by_rows.reshape(H, F, H, N).transpose(3, 1, 0, 2)
        by_patches = self._conv_patches(w, b).reshape(N, F, H, H)
        if not np.array_equal(_bits(by_rows), _bits(by_patches)):
            return False
        gradients = (self.conv_dw, self.conv_db, self.fc_dw, self.fc_db)
        kept = [g.copy() for g in gradients]
        self.labels[...] = rng.integers(0, self.logits_buffer.shape[1], N)
        configurations = [("patches", "gather", None), ("rows", "gather", None)]
        if self.dense_windows:  # tried first: faster at this batch size
            configurations[1:1] = [("rows", "views", "band"), ("rows", "views", "full")]
        results = {}
        for configuration in configurations:
            self._set_route(*configuration)
            loss = self._step()
            results[configuration] = [np.asarray(loss), *(g.copy() for g in gradients)]
        for gradient, value in zip(gradients, kept, strict=True):
            gradient[...] = value
        public = results.pop(configurations[0])
        agrees = {
            configuration: all(
                np.array_equal(_bits(a), _bits(b)) for a, b in zip(values, public, strict=True)
            )
            for configuration, values in results.items()
        }
        # "band" runs the full product beyond its overflow bound: both must agree.
        band, full = ("rows", "views", "band"), ("rows", "views", "full")
        if band in agrees:
            agrees[band] = agrees[band] and agrees[full]
        for configuration, agreed in agrees.items():
            if agreed:
                self._set_route(*configuration)
                return True
        return False

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
        return self._step()

    def _step(self) -> float:
        """Loss and gradients of the minibatch in ``self.x`` and ``self.labels``."""
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
        """conv2d_forward, into the layout of the route."""
        if self.route == "rows":
            self._conv_rows(self.conv_w_flat, self.conv_b_column)  # H, F*H, N
        else:
            self._conv_patches(self.conv_w, self.conv_b)  # N, F, H*H

    def pool_relu_forward(self) -> None:
        """Max-pool, then ReLU (they commute): ReLU runs on the pooled values only.

        Route "rows": the window elements are strided views of the convolution output, so the
        maxima are ``p*p - 1`` element-wise calls on long rows, in the public op's order
        (``max(max(max(e0, e1), e2), e3)``); the ReLU writes the flat features.
        """
        if self.pooling == "views":
            elements, window_max = self.window_elements, self.window_max_rows
            if len(elements) == 1:
                np.copyto(window_max, elements[0])
            else:
                np.maximum(elements[0], elements[1], out=window_max)
            for element in elements[2:]:
                np.maximum(window_max, element, out=window_max)  # F, P, P, N
            np.maximum(self.window_max_rows_2d, 0, out=self.pooled_rows)
            np.copyto(self.pooled, self.pooled_rows.T)  # N, F*P*P: the features
            return
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
        """maxpool2d_backward and relu_backward in one (public layout, or route "rows").

        Each window's gradient goes to its first maximum, times the ReLU mask: a window whose
        maximum is not positive had ReLU output 0 everywhere and passes no gradient (the
        public path sends it to the window's first element, where relu_backward stops it).
        The first element "equal to the maximum" is the public op's first maximum (``np.argmax``)
        except in a window holding NaN, and a NaN makes the loss NaN: that step is redone by
        the public ops.
        """
        if self.pooling == "views":
            self._pool_relu_backward_views()
            return
        windows, window_max = self.windows, self.window_max
        is_max = np.equal(windows, window_max, out=self.is_max)  # p*p, N*F*P*P
        weighted = np.multiply(is_max, self.countdown, out=self.weighted)
        first = np.maximum.reduce(weighted, axis=0, out=self.first)  # p*p - first max
        offset = self.offset_by_weight.take(first, out=self.offset, mode="clip")
        winner = np.add(self.pool_start, offset, out=self.winner)
        positive = np.greater(window_max, 0, out=self.positive)  # the ReLU was on
        dflat = np.multiply(self.dpooled_flat, positive, out=self.dpooled_flat)  # dy * (x > 0)
        self.dconv.fill(0)
        self.dconv_flat[winner] = dflat  # windows do not overlap (stride = size)

    def _pool_relu_backward_views(self) -> None:
        """Route "rows": the same first maxima, found on the windows' strided views, into
        ``self.dconv_rows`` (layout ``(n, i, f, j)``)."""
        np.equal(self.window_elements_stacked, self.window_max_rows, out=self.is_max_rows)
        weighted = np.multiply(self.is_max_rows_flat, self.countdown, out=self.weighted)
        np.maximum.reduce(weighted, axis=0, out=self.first)  # p*p - first max: (f, pi, pj, n)
        first = self.first_by_sample
        np.copyto(first, self.first_rows_2d.T)  # by sample: n, (f, pi, pj)
        offset = self.offset_rows.take(first.reshape(-1), out=self.winner, mode="clip")
        winner = np.add(self.pool_start_rows, offset, out=self.winner)
        positive = np.greater(self.pooled, 0, out=self.positive.reshape(self.pooled.shape))
        dflat = np.multiply(self.dpooled, positive, out=self.dpooled)  # dy * (x > 0)
        self.dconv_rows.fill(0)
        self.dconv_rows_flat[winner] = dflat.reshape(-1)  # windows do not overlap

    def conv_backward(self) -> None:
        """conv2d_backward without dx: db, then dw by the public op's route."""
        if self.pooling == "views":
            self._conv_backward_views()
            return
        db = np.add.reduce(self.dconv, axis=0, out=self.conv_db_by_position)  # F, H*H
        np.add.reduce(db, axis=1, out=self.conv_db)
        if self.dense:
            np.matmul(self.dconv_by_sample_T, self.x_flat, out=self.dM)  # F*H*H, C*S*S
            np.matmul(self.dM_by_filter, self.placement_T, out=self.conv_dw)
        else:  # the columns of the forward pass (route "patches": "rows" needs dense)
            products = np.matmul(self.dconv, self.columns_T, out=self.patch_dw)
            np.add.reduce(products, axis=0, out=self.conv_dw)

    def _conv_backward_views(self) -> None:
        """Route "rows": db and dw from ``self.dconv_rows``, layout ``(n, i, f, j)``.

        The public op's sums in its order: db adds each position's gradients over the batch
        (sample after sample: NumPy adds whole rows), then each filter's positions; ``dM =
        dy_flat.T @ x_flat`` has one row per position, here in the order (i, f, j), which
        changes no sum. Route "band" computes only the entries of ``dM`` that the placement
        matrix reads (the pixels output row i read: a third of the products at TinyCNN's
        sizes) and leaves the others 0: they are multiplied by 0, and adding 0 changes no
        sum, unless the public one overflowed to infinity (0 * inf is NaN). That cannot
        happen below ``|dM| <= 2 max|x| max|fc.weight|`` (each sample's upstream gradients
        add up to at most ``2 / N`` in absolute value), so beyond that bound the full product
        runs. The plan takes "band" only if its numbers agreed with the public route's.
        """
        N, C, S, F, K, H, p, P = self.sizes
        np.add.reduce(self.dconv_rows_2d, axis=0, out=self.db_by_position_rows.reshape(-1))
        np.copyto(
            self.conv_db_by_position.reshape(F, H, H), self.db_by_position_rows.transpose(1, 0, 2)
        )
        np.add.reduce(self.conv_db_by_position, axis=1, out=self.conv_db)
        if self.dM_route == "band" and self._band_is_safe():
            np.matmul(self.dconv_band, self.x_band, out=self.dM_band)  # H, F*H, K*S
            self.dM_public.reshape(-1)[self.dM_public_position] = self.dM_band.reshape(-1).take(
                self.dM_band_position
            )
            dM = self.dM_public_by_filter
        else:
            np.matmul(self.dconv_rows_2d.T, self.x_flat, out=self.dM_rows)  # (i, f, j), C*S*S
            np.copyto(self.dM_full, self.dM_rows.reshape(H, F, H, -1).transpose(1, 0, 2, 3))
            dM = self.dM_full_by_filter
        np.matmul(dM, self.placement_T, out=self.conv_dw)

    def _band_is_safe(self) -> bool:
        """Is ``4 max|x| max|fc.weight|`` finite: no entry of the public ``dM`` overflows?"""
        bound = 4 * self.data.x_max_abs * float(np.max(np.abs(self.fc_w)))
        return bound < np.finfo(self.dtype).max


def _bits(a: np.ndarray) -> np.ndarray:
    """The raw bits of a float array (equal bits: equal numbers, zero signs and NaNs)."""
    a = np.ascontiguousarray(a)
    return a.view(np.dtype(f"u{a.dtype.itemsize}"))


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
