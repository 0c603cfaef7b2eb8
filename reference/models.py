"""TinyCNN, the one-hidden-layer MLP and softmax regression, built from the ops in
:mod:`tinycnn.reference.ops`; :func:`build_model` builds any of them by name.

Parameters live in a plain dict whose keys and array layouts are exactly PyTorch's
``state_dict`` of the twin modules in :mod:`tinycnn.torch_impl`, so weights move between the two
with no renaming or transposing.

A model is a dict of parameters plus two functions: ``forward_with_activations`` keeps every
intermediate array the backward pass needs, and ``backward`` walks the same layers in reverse.
The ops module is a constructor argument, so the same model trains with a student's ops too.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Mapping

import numpy as np
from tinycnn.reference import ops as reference_ops

__all__ = [
    "DEFAULT_HIDDEN",
    "MLP",
    "MODEL_KINDS",
    "SoftmaxRegression",
    "TinyCNN",
    "build_model",
    "init_uniform",
]

IMAGE_CHANNELS = 1  # the synthetic images are grayscale


def init_uniform(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    """Draw from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``: PyTorch's default for Conv2d and Linear.

    PyTorch's ``kaiming_uniform_(a=sqrt(5))`` on the weight and its bias rule both reduce to this
    bound, so a model initialised here starts from the same distribution as ``nn.Conv2d`` and
    ``nn.Linear`` (not the same numbers: the numbers come from NumPy's generator and a seed).
    """
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape)


def _flatten(a: np.ndarray) -> np.ndarray:
    """``(N, ...)`` -> ``(N, prod(...))``, row-major as ``torch.flatten(a, 1)``; N = 0 included
    (``reshape(N, -1)`` cannot infer the width of an empty array)."""
    return a.reshape(a.shape[0], int(np.prod(a.shape[1:])))


class _Model:
    """What TinyCNN and MLP share: parameters, loss and gradients, prediction."""

    #: Name of the layer kind, for messages.
    name = "model"

    def __init__(self, params: dict[str, np.ndarray], ops: types.ModuleType | None):
        self.ops = reference_ops if ops is None else ops
        self.params = params

    # -- parameters -------------------------------------------------------------------------

    @property
    def dtype(self) -> np.dtype:
        """The floating dtype shared by every parameter."""
        return next(iter(self.params.values())).dtype

    @property
    def n_parameters(self) -> int:
        """Number of trainable scalars, counted from the parameter arrays."""
        return sum(int(p.size) for p in self.params.values())

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape each parameter must have, derived from the constructor arguments."""
        raise NotImplementedError

    def load_params(self, params: Mapping[str, np.ndarray]) -> _Model:
        """Replace the parameters with copies of ``params`` (names and shapes checked).

        The dtype of ``params`` is kept: loading float32 arrays makes a float32 model.
        """
        expected = self.parameter_shapes()
        if set(params) != set(expected):
            raise ValueError(
                f"{self.name} expects parameters {sorted(expected)}, got {sorted(params)}"
            )
        dtypes = {np.asarray(params[key]).dtype for key in expected}
        if len(dtypes) != 1 or next(iter(dtypes)) not in (np.float32, np.float64):
            raise ValueError(f"parameters must all be float32 or all float64, got {dtypes}")
        for key, shape in expected.items():
            if np.shape(params[key]) != shape:
                raise ValueError(
                    f"parameter {key!r} must have shape {shape}, got {np.shape(params[key])}"
                )
        self.params = {key: np.array(params[key], copy=True) for key in expected}
        return self

    def astype(self, dtype) -> _Model:
        """Cast every parameter to ``dtype`` (float32 or float64) in place; returns ``self``."""
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        self.params = {key: p.astype(dtype) for key, p in self.params.items()}
        return self

    # -- computation --------------------------------------------------------------------------

    def _check_images(self, x: np.ndarray) -> np.ndarray:
        """Check ``x`` is ``(N, 1, S, S)`` and cast it to the model dtype."""
        S = self.config["image_size"]
        x = np.asarray(x)
        if x.ndim != 4 or x.shape[1:] != (IMAGE_CHANNELS, S, S):
            raise ValueError(
                f"{self.name} expects images of shape (N, {IMAGE_CHANNELS}, {S}, {S}), "
                f"got {x.shape}"
            )
        return x.astype(self.dtype, copy=False)

    def forward_with_activations(self, x: np.ndarray) -> tuple[np.ndarray, dict]:
        """Logits ``(N, K)`` and the intermediate arrays the backward pass needs."""
        raise NotImplementedError

    def backward(self, dlogits: np.ndarray, activations: dict) -> dict[str, np.ndarray]:
        """Gradient of the loss for every parameter, given ``dloss/dlogits``."""
        raise NotImplementedError

    def kink_signature(self, activations: dict) -> np.ndarray:
        """Which side of every non-differentiable point the forward pass took, as booleans.

        The sign of every ReLU input and the winner of every max-pool window (computed with
        the reference ops, whatever ``self.ops`` is). Where it changes between two forward
        passes, the loss has a kink between them: see :func:`reference.gradcheck.gradient_check`.
        A model without ReLU or pooling has none (an empty array).
        """
        return np.zeros(0, dtype=bool)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Logits ``(N, n_classes)`` for images ``x (N, 1, S, S)``; N = 0 gives ``(0, K)``."""
        return self.forward_with_activations(x)[0]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted class index per image, ``(N,)``."""
        return self.forward(x).argmax(axis=1)

    def loss_and_gradients(
        self, x: np.ndarray, labels: np.ndarray
    ) -> tuple[float, dict[str, np.ndarray]]:
        """Batch-mean softmax cross-entropy on ``(x, labels)`` and its gradient per parameter.

        ``labels`` may have any integer dtype (int8 ... uint64). An empty batch gives a NaN loss
        (the mean of nothing, as PyTorch) and zero gradients.
        """
        logits, activations = self.forward_with_activations(x)
        loss, dlogits = self.ops.softmax_cross_entropy(logits, np.asarray(labels))
        return float(loss), self.backward(dlogits, activations)

    def layer_summary(self) -> list[dict]:
        """One row per layer: ``layer``, ``output_shape`` (per sample) and ``n_parameters``.

        Output shapes come from running one blank image through the model, so they are what the
        code computes, not what the docstring says.
        """
        S = self.config["image_size"]
        blank = np.zeros((1, IMAGE_CHANNELS, S, S), dtype=self.dtype)
        _, activations = self.forward_with_activations(blank)
        rows = [{"layer": "Input", "output_shape": (IMAGE_CHANNELS, S, S), "n_parameters": 0}]
        for layer, key, param_prefix in self._summary_layers():
            n_params = sum(
                int(p.size)
                for name, p in self.params.items()
                if param_prefix and name.startswith(param_prefix + ".")
            )
            rows.append(
                {
                    "layer": layer,
                    "output_shape": tuple(activations[key].shape[1:]),
                    "n_parameters": n_params,
                }
            )
        return rows

    def _summary_layers(self) -> list[tuple[str, str, str | None]]:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args}) with {self.n_parameters} parameters, {self.dtype}"


class TinyCNN(_Model):
    """Conv2D -> ReLU -> MaxPool -> Flatten -> Dense, on ``(N, 1, S, S)`` images.

    Parameters
    ----------
    n_filters : int, default 3
        Number of convolution filters ``F``.
    kernel_size : int, default 3
        Side ``K`` of each square filter.
    n_classes : int, default 3
        Number of output logits.
    image_size : int, default 8
        Side ``S`` of the square grayscale input.
    pool_size : int, default 2
        Side and stride of the max-pooling window.
    seed : int, default 0
        Seed of the initial parameters.
    dtype : float32 or float64, default float64
    ops : module, default :mod:`tinycnn.reference.ops`
        Any module implementing the op contract.

    Shapes
    ------
    ``(N, 1, S, S)`` -conv-> ``(N, F, S-K+1, S-K+1)`` -pool-> ``(N, F, P, P)`` with
    ``P = (S-K+1) // pool_size`` -flatten-> ``(N, F*P*P)`` -dense-> ``(N, n_classes)``.
    Parameters: ``conv.weight (F, 1, K, K)``, ``conv.bias (F,)``,
    ``fc.weight (n_classes, F*P*P)``, ``fc.bias (n_classes,)``.
    With the defaults: 3 * 9 + 3 = 30 conv and 27 * 3 + 3 = 84 dense parameters, 114 in all.
    """

    name = "TinyCNN"

    def __init__(
        self,
        n_filters: int = 3,
        kernel_size: int = 3,
        n_classes: int = 3,
        *,
        image_size: int = 8,
        pool_size: int = 2,
        seed: int = 0,
        dtype=np.float64,
        ops: types.ModuleType | None = None,
    ):
        for arg, value in (
            ("n_filters", n_filters),
            ("kernel_size", kernel_size),
            ("n_classes", n_classes),
            ("image_size", image_size),
            ("pool_size", pool_size),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{arg} must be a positive integer, got {value!r}")
        if n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}")
        conv_size = reference_ops.conv_output_size(image_size, kernel_size)
        pooled = reference_ops.conv_output_size(conv_size, pool_size, 0, pool_size)
        self.config = {
            "n_filters": n_filters,
            "kernel_size": kernel_size,
            "n_classes": n_classes,
            "image_size": image_size,
            "pool_size": pool_size,
        }
        self.n_features = n_filters * pooled * pooled

        rng = np.random.default_rng(seed)
        shapes = self.parameter_shapes()
        conv_fan_in = IMAGE_CHANNELS * kernel_size * kernel_size
        params = {
            "conv.weight": init_uniform(rng, shapes["conv.weight"], conv_fan_in),
            "conv.bias": init_uniform(rng, shapes["conv.bias"], conv_fan_in),
            "fc.weight": init_uniform(rng, shapes["fc.weight"], self.n_features),
            "fc.bias": init_uniform(rng, shapes["fc.bias"], self.n_features),
        }
        super().__init__(params, ops)
        self.astype(dtype)

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        F, K, n_classes = (self.config[k] for k in ("n_filters", "kernel_size", "n_classes"))
        return {
            "conv.weight": (F, IMAGE_CHANNELS, K, K),
            "conv.bias": (F,),
            "fc.weight": (n_classes, self.n_features),
            "fc.bias": (n_classes,),
        }

    def forward_with_activations(self, x):
        x = self._check_images(x)
        p, ops, pool = self.params, self.ops, self.config["pool_size"]
        conv = ops.conv2d_forward(x, p["conv.weight"], p["conv.bias"])  # N, F, S-K+1, S-K+1
        relu = ops.relu_forward(conv)  # N, F, S-K+1, S-K+1
        pooled = ops.maxpool2d_forward(relu, pool, pool)  # N, F, P, P
        flat = _flatten(pooled)  # N, F*P*P (row-major, as torch.flatten)
        logits = ops.linear_forward(flat, p["fc.weight"], p["fc.bias"])  # N, n_classes
        activations = {
            "input": x,
            "conv": conv,
            "relu": relu,
            "pool": pooled,
            "flatten": flat,
            "logits": logits,
        }
        return logits, activations

    def backward(self, dlogits, activations):
        p, ops, pool = self.params, self.ops, self.config["pool_size"]
        a = activations
        dflat, dfc_w, dfc_b = ops.linear_backward(
            dlogits, a["flatten"], p["fc.weight"], p["fc.bias"]
        )  # N, F*P*P
        dpooled = dflat.reshape(a["pool"].shape)  # N, F, P, P
        drelu = ops.maxpool2d_backward(dpooled, a["relu"], pool, pool)  # N, F, S-K+1, S-K+1
        dconv = ops.relu_backward(drelu, a["conv"])
        _, dconv_w, dconv_b = ops.conv2d_backward(
            dconv, a["input"], p["conv.weight"], p["conv.bias"]
        )
        return {"conv.weight": dconv_w, "conv.bias": dconv_b, "fc.weight": dfc_w, "fc.bias": dfc_b}

    def kink_signature(self, activations):
        pool, relu = self.config["pool_size"], activations["relu"]
        winners = reference_ops.maxpool2d_backward(
            np.ones(activations["pool"].shape, relu.dtype), relu, pool, pool
        )
        return np.concatenate([(activations["conv"] > 0).ravel(), (winners != 0).ravel()])

    def _summary_layers(self):
        F, K = self.config["n_filters"], self.config["kernel_size"]
        pool = self.config["pool_size"]
        return [
            (f"Conv2D ({F} filters, {K}x{K})", "conv", "conv"),
            ("ReLU", "relu", None),
            (f"MaxPool ({pool}x{pool})", "pool", None),
            ("Flatten", "flatten", None),
            ("Dense + bias", "logits", "fc"),
        ]


class MLP(_Model):
    """Flatten -> Dense (hidden) -> ReLU -> Dense, on ``(N, 1, S, S)`` images.

    Parameters
    ----------
    hidden : int, default 18
        Width of the single hidden layer.
    n_classes : int, default 3
    image_size : int, default 8
        The ``S * S`` pixels are the input features.
    seed : int, default 0
    dtype : float32 or float64, default float64
    ops : module, default :mod:`tinycnn.reference.ops`

    Parameters: ``hidden.weight (hidden, S*S)``, ``hidden.bias (hidden,)``,
    ``out.weight (n_classes, hidden)``, ``out.bias (n_classes,)``:
    ``(S*S + 1) * hidden + (hidden + 1) * n_classes`` in all.
    """

    name = "MLP"

    def __init__(
        self,
        hidden: int = 18,
        n_classes: int = 3,
        *,
        image_size: int = 8,
        seed: int = 0,
        dtype=np.float64,
        ops: types.ModuleType | None = None,
    ):
        for arg, value in (
            ("hidden", hidden),
            ("n_classes", n_classes),
            ("image_size", image_size),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{arg} must be a positive integer, got {value!r}")
        if n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}")
        self.config = {"hidden": hidden, "n_classes": n_classes, "image_size": image_size}
        n_inputs = IMAGE_CHANNELS * image_size * image_size
        rng = np.random.default_rng(seed)
        shapes = self.parameter_shapes()
        params = {
            "hidden.weight": init_uniform(rng, shapes["hidden.weight"], n_inputs),
            "hidden.bias": init_uniform(rng, shapes["hidden.bias"], n_inputs),
            "out.weight": init_uniform(rng, shapes["out.weight"], hidden),
            "out.bias": init_uniform(rng, shapes["out.bias"], hidden),
        }
        super().__init__(params, ops)
        self.astype(dtype)

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        hidden, n_classes, S = (self.config[k] for k in ("hidden", "n_classes", "image_size"))
        return {
            "hidden.weight": (hidden, IMAGE_CHANNELS * S * S),
            "hidden.bias": (hidden,),
            "out.weight": (n_classes, hidden),
            "out.bias": (n_classes,),
        }

    def forward_with_activations(self, x):
        x = self._check_images(x)
        p, ops = self.params, self.ops
        flat = _flatten(x)  # N, S*S
        pre = ops.linear_forward(flat, p["hidden.weight"], p["hidden.bias"])  # N, hidden
        hidden = ops.relu_forward(pre)  # N, hidden
        logits = ops.linear_forward(hidden, p["out.weight"], p["out.bias"])  # N, n_classes
        activations = {"flatten": flat, "hidden": pre, "relu": hidden, "logits": logits}
        return logits, activations

    def backward(self, dlogits, activations):
        p, ops, a = self.params, self.ops, activations
        drelu, dout_w, dout_b = ops.linear_backward(
            dlogits, a["relu"], p["out.weight"], p["out.bias"]
        )  # N, hidden
        dpre = ops.relu_backward(drelu, a["hidden"])  # N, hidden
        _, dhidden_w, dhidden_b = ops.linear_backward(
            dpre, a["flatten"], p["hidden.weight"], p["hidden.bias"]
        )
        return {
            "hidden.weight": dhidden_w,
            "hidden.bias": dhidden_b,
            "out.weight": dout_w,
            "out.bias": dout_b,
        }

    def kink_signature(self, activations):
        return (activations["hidden"] > 0).ravel()

    def _summary_layers(self):
        return [
            ("Flatten", "flatten", None),
            (f"Dense ({self.config['hidden']} hidden)", "hidden", "hidden"),
            ("ReLU", "relu", None),
            ("Dense + bias", "logits", "out"),
        ]


class SoftmaxRegression(_Model):
    """``logits = flatten(x) @ W.T + b``: one dense layer from the ``S*S`` pixels to the classes.

    Parameters
    ----------
    n_classes : int, default 3
    image_size : int, default 8
    seed : int, default 0
        Seed of the initial parameters (PyTorch's ``nn.Linear`` distribution).
    dtype : float32 or float64, default float64
    ops : module, default :mod:`tinycnn.reference.ops`

    Parameters live under ``linear.weight (n_classes, S*S)`` and ``linear.bias (n_classes,)``,
    the ``state_dict`` names of :func:`tinycnn.reports.baseline.torch_twin`.
    """

    name = "SoftmaxRegression"

    def __init__(
        self,
        n_classes: int = 3,
        *,
        image_size: int = 8,
        seed: int = 0,
        dtype=np.float64,
        ops: types.ModuleType | None = None,
    ):
        if n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}")
        self.config = {"n_classes": n_classes, "image_size": image_size}
        n_inputs = IMAGE_CHANNELS * image_size * image_size
        rng = np.random.default_rng(seed)
        shapes = self.parameter_shapes()
        super().__init__(
            {
                "linear.weight": init_uniform(rng, shapes["linear.weight"], n_inputs),
                "linear.bias": init_uniform(rng, shapes["linear.bias"], n_inputs),
            },
            ops,
        )
        self.astype(dtype)

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        n_classes, S = self.config["n_classes"], self.config["image_size"]
        return {"linear.weight": (n_classes, IMAGE_CHANNELS * S * S), "linear.bias": (n_classes,)}

    def forward_with_activations(self, x):
        x = self._check_images(x)
        flat = _flatten(x)  # N, S*S
        logits = self.ops.linear_forward(
            flat, self.params["linear.weight"], self.params["linear.bias"]
        )  # N, n_classes
        return logits, {"flatten": flat, "logits": logits}

    def backward(self, dlogits, activations):
        _, dw, db = self.ops.linear_backward(
            dlogits,
            activations["flatten"],
            self.params["linear.weight"],
            self.params["linear.bias"],
        )
        return {"linear.weight": dw, "linear.bias": db}

    def _summary_layers(self):
        return [("Flatten", "flatten", None), ("Dense + bias", "logits", "linear")]


# ------------------------------------------------------------------------------------------
# The one model factory (CLI, report runs, benchmark, checkpoints)
# ------------------------------------------------------------------------------------------

#: Model kinds by the name the CLI, the report's run specs and checkpoints use.
MODEL_KINDS: dict[str, type[_Model]] = {
    "tinycnn": TinyCNN,
    "mlp": MLP,
    "linear": SoftmaxRegression,
}

#: Hidden width of the MLP when none is given: the lecture's comparison MLP.
DEFAULT_HIDDEN = 18


def build_model(
    kind: str,
    n_classes: int = 3,
    *,
    hidden: int | None = None,
    seed: int = 0,
    dtype=np.float64,
    ops: types.ModuleType | None = None,
    **config,
) -> _Model:
    """A freshly initialised model of ``kind``: the one place models are built from names.

    Parameters
    ----------
    kind : {"tinycnn", "mlp", "linear"}
        TinyCNN, the one-hidden-layer MLP, or softmax regression (:data:`MODEL_KINDS`).
    n_classes : int, default 3
        Output logits: 3 (vertical, horizontal, diagonal) or 4 (adds dot).
    hidden : int, optional
        Width of the MLP's hidden layer (default :data:`DEFAULT_HIDDEN`); only for ``"mlp"``.
    seed : int, default 0
        Seed of the initial parameters.
    dtype : float32 or float64, default float64
    ops : module, optional
        Ops implementing the contract (default :mod:`tinycnn.reference.ops`).
    **config
        Further constructor arguments of the class, e.g. ``n_filters`` or ``image_size``; a
        checkpoint's ``config`` dict passes through unchanged (``build_model(kind, **config)``).

    Returns
    -------
    TinyCNN, MLP or SoftmaxRegression
        ``model.config`` holds the architecture arguments; its parameters have dtype ``dtype``.

    Raises
    ------
    ValueError
        An unknown kind, ``hidden`` for a model other than the MLP, an argument the class does
        not take, or an invalid value (raised by the class).
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"model must be one of {tuple(MODEL_KINDS)}, got {kind!r}")
    cls = MODEL_KINDS[kind]
    if kind == "mlp":
        config["hidden"] = DEFAULT_HIDDEN if hidden is None else hidden
    elif hidden is not None:
        raise ValueError(f"a hidden width applies only to the MLP, not to {kind}")
    accepted = set(inspect.signature(cls).parameters) - {"seed", "dtype", "ops"}
    unknown = sorted(set(config) - accepted)
    if unknown:
        raise ValueError(
            f"{kind} takes no argument {unknown[0]!r} (it takes {', '.join(sorted(accepted))})"
        )
    return cls(n_classes=n_classes, seed=seed, dtype=dtype, ops=ops, **config)
