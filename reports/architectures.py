"""Section 12: the classic CNNs, built layer by layer in PyTorch on the meta device.

Each architecture is written here from its paper's layer table (no torchvision, nothing
downloaded). Building under ``torch.device("meta")`` gives every parameter its shape but no
memory and no initialisation, so even VGG-16's 138 million parameters cost nothing; a forward
pass on a meta tensor checks that the layer shapes fit together.

Variants, because "the" parameter count depends on them:

- LeNet-5, 1998 paper: C3 sees only some S2 maps (the paper's Table I), S2/S4 subsampling has a
  trainable coefficient and bias per map, the output is 10 Euclidean RBF units (no bias).
- LeNet-5, modern: the usual re-implementation: C3 sees all 6 maps, max pooling, dense output.
- AlexNet, 2012 paper: 96-256-384-384-256 filters, conv2/4/5 split in two groups (two GPUs).
- AlexNet, torchvision variant: 64-192-384-256-256 filters, no groups (``torchvision.models``).
- VGG-16: configuration D of Simonyan and Zisserman (13 conv + 3 dense layers).
- ResNet-50: bottleneck blocks [3, 4, 6, 3], batch norm (its scale and shift are parameters).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["ARCHITECTURES", "architecture_table", "build", "depth", "reference_agreement_table"]


def _nn():
    """``torch`` and ``torch.nn``, imported on first use (this module is imported without torch)."""
    import torch
    from torch import nn

    return torch, nn


# ---------------------------------------------------------------------------------------------
# LeNet-5
# ---------------------------------------------------------------------------------------------

#: LeCun et al. (1998), Table I: which S2 maps (0-5) each of the 16 C3 maps reads.
LENET_C3_CONNECTIONS = (
    (0, 1, 2),
    (1, 2, 3),
    (2, 3, 4),
    (3, 4, 5),
    (4, 5, 0),
    (5, 0, 1),
    (0, 1, 2, 3),
    (1, 2, 3, 4),
    (2, 3, 4, 5),
    (3, 4, 5, 0),
    (4, 5, 0, 1),
    (5, 0, 1, 2),
    (0, 1, 3, 4),
    (1, 2, 4, 5),
    (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


def _lenet_classic():
    torch, nn = _nn()
    F = torch.nn.functional

    class PartialConv(nn.Module):
        """C3: output map ``j`` convolves only the input maps listed in ``connections[j]``."""

        weight_layer = True

        def __init__(self, connections, kernel_size):
            super().__init__()
            self.connections = connections
            self.weights = nn.ParameterList(
                nn.Parameter(torch.empty(1, len(c), kernel_size, kernel_size)) for c in connections
            )
            self.bias = nn.Parameter(torch.empty(len(connections)))

        def forward(self, x):
            maps = [
                F.conv2d(x[:, list(c)], w)
                for c, w in zip(self.connections, self.weights, strict=True)
            ]
            return torch.cat(maps, dim=1) + self.bias[:, None, None]

    class Subsampling(nn.Module):
        """S2/S4: sum of each 2x2 block, times a trainable coefficient, plus a bias, per map."""

        def __init__(self, channels):
            super().__init__()
            self.coefficient = nn.Parameter(torch.empty(channels))
            self.bias = nn.Parameter(torch.empty(channels))

        def forward(self, x):
            summed = F.avg_pool2d(x, 2) * 4
            return torch.tanh(summed * self.coefficient[:, None, None] + self.bias[:, None, None])

    class RBFOutput(nn.Module):
        """Output layer: ``y_i = sum_j (x_j - w_ij)^2``, one prototype per class, no bias."""

        weight_layer = True

        def __init__(self, in_features, n_classes):
            super().__init__()
            self.prototypes = nn.Parameter(torch.empty(n_classes, in_features))

        def forward(self, x):
            return ((x[:, None, :] - self.prototypes[None]) ** 2).sum(-1)

    return nn.Sequential(
        nn.Conv2d(1, 6, 5),
        nn.Tanh(),
        Subsampling(6),  # C1, S2: 6 x 14 x 14
        PartialConv(LENET_C3_CONNECTIONS, 5),
        nn.Tanh(),
        Subsampling(16),  # C3, S4: 16 x 5 x 5
        nn.Conv2d(16, 120, 5),
        nn.Tanh(),
        nn.Flatten(),  # C5: 120
        nn.Linear(120, 84),
        nn.Tanh(),  # F6
        RBFOutput(84, 10),
    )


def _lenet_modern():
    _, nn = _nn()
    return nn.Sequential(
        nn.Conv2d(1, 6, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 6 x 14 x 14
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),  # 400
        nn.Linear(400, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )


# ---------------------------------------------------------------------------------------------
# AlexNet
# ---------------------------------------------------------------------------------------------


def _alexnet(filters, groups, first_padding):
    _, nn = _nn()
    c1, c2, c3, c4, c5 = filters
    g2, g4, g5 = groups
    return nn.Sequential(
        nn.Conv2d(3, c1, 11, stride=4, padding=first_padding),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(c1, c2, 5, padding=2, groups=g2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(c2, c3, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(c3, c4, 3, padding=1, groups=g4),
        nn.ReLU(),
        nn.Conv2d(c4, c5, 3, padding=1, groups=g5),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.AdaptiveAvgPool2d(6),
        nn.Flatten(),  # c5 * 6 * 6
        nn.Dropout(),
        nn.Linear(c5 * 36, 4096),
        nn.ReLU(),
        nn.Dropout(),
        nn.Linear(4096, 4096),
        nn.ReLU(),
        nn.Linear(4096, 1000),
    )


def _alexnet_paper():
    # 227 x 227 input, no padding in conv1: 55 -> 27 -> 27 -> 13 -> 13 -> 6.
    return _alexnet((96, 256, 384, 384, 256), groups=(2, 2, 2), first_padding=0)


def _alexnet_torchvision():
    return _alexnet((64, 192, 384, 256, 256), groups=(1, 1, 1), first_padding=2)


# ---------------------------------------------------------------------------------------------
# VGG-16
# ---------------------------------------------------------------------------------------------

#: Configuration D: filters per 3x3 conv layer, "M" for a 2x2 max pool.
VGG16_LAYERS = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
)


def _vgg16():
    _, nn = _nn()
    layers, channels = [], 3
    for item in VGG16_LAYERS:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU()]
            channels = item
    layers += [
        nn.AdaptiveAvgPool2d(7),
        nn.Flatten(),  # 512 * 7 * 7 = 25088
        nn.Linear(512 * 49, 4096),
        nn.ReLU(),
        nn.Dropout(),
        nn.Linear(4096, 4096),
        nn.ReLU(),
        nn.Dropout(),
        nn.Linear(4096, 1000),
    ]
    return nn.Sequential(*layers)


# ---------------------------------------------------------------------------------------------
# ResNet-50
# ---------------------------------------------------------------------------------------------


def _resnet50():
    torch, nn = _nn()

    class Bottleneck(nn.Module):
        """1x1 reduce -> 3x3 (stride here) -> 1x1 expand (x4), plus the identity or a projection."""

        def __init__(self, in_channels, width, stride):
            super().__init__()
            out = width * 4
            self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3, self.bn3 = nn.Conv2d(width, out, 1, bias=False), nn.BatchNorm2d(out)
            self.downsample = None
            if stride != 1 or in_channels != out:
                # A parallel path, not depth: excluded by ``depth``.
                self.downsample = nn.Sequential(
                    nn.Conv2d(in_channels, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
                )

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = torch.relu(self.bn2(self.conv2(y)))
            y = self.bn3(self.conv3(y))
            return torch.relu(y + (x if self.downsample is None else self.downsample(x)))

    layers = [
        nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
    ]
    channels = 64
    for stage, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True)):
        for block in range(blocks):
            stride = 2 if block == 0 and stage > 0 else 1
            layers.append(Bottleneck(channels, width, stride))
            channels = width * 4
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 1000)]
    return nn.Sequential(*layers)


def _tinycnn():
    from tinycnn.torch_impl import TinyCNN

    return TinyCNN()


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------

#: name -> (builder, input shape (C, H, W), variant note).
ARCHITECTURES = {
    "TinyCNN": (_tinycnn, (1, 8, 8), "this project (torch_impl.TinyCNN)"),
    "LeNet-5 (1998 paper)": (
        _lenet_classic,
        (1, 32, 32),
        "C3 connection table, trainable subsampling, RBF output",
    ),
    "LeNet-5 (modern)": (_lenet_modern, (1, 32, 32), "full C3, max pooling, dense output"),
    "AlexNet (2012 paper)": (
        _alexnet_paper,
        (3, 227, 227),
        "96-256-384-384-256 filters, 2 groups in conv2/4/5",
    ),
    "AlexNet (torchvision)": (
        _alexnet_torchvision,
        (3, 224, 224),
        "64-192-384-256-256 filters, no groups",
    ),
    "VGG-16": (_vgg16, (3, 224, 224), "configuration D"),
    "ResNet-50": (_resnet50, (3, 224, 224), "bottlenecks [3, 4, 6, 3], batch norm"),
}


def build(name: str):
    """Build architecture ``name`` on the meta device (no weights allocated)."""
    torch, _ = _nn()
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; known: {sorted(ARCHITECTURES)}")
    with torch.device("meta"):
        return ARCHITECTURES[name][0]()


def depth(model) -> int:
    """Weight layers (convolution or dense) on the longest input-to-output path.

    Counts ``nn.Conv2d``, ``nn.Linear`` and custom layers marked ``weight_layer``; projection
    shortcuts (``downsample``) run beside the main path and are not counted, and batch norm or
    trainable subsampling are not counted as layers, as the papers count depth.
    """
    _, nn = _nn()
    return sum(
        1
        for name, module in model.named_modules()
        if (isinstance(module, (nn.Conv2d, nn.Linear)) or getattr(module, "weight_layer", False))
        and "downsample" not in name.split(".")
    )


def architecture_table(names=tuple(ARCHITECTURES)) -> pd.DataFrame:
    """Parameters, depth and output shape of each architecture, built on the meta device.

    Returns
    -------
    DataFrame with ``architecture``, ``n_parameters``, ``depth``, ``input_shape``, ``output_shape``
    (from a forward pass of one meta image) and ``variant``.
    """
    torch, _ = _nn()
    rows = []
    for name in names:
        _, input_shape, variant = ARCHITECTURES[name]
        model = build(name).eval()
        with torch.no_grad():
            output = model(
                torch.empty(1, *input_shape, device="meta", dtype=next(model.parameters()).dtype)
            )
        rows.append(
            {
                "architecture": name,
                "n_parameters": sum(p.numel() for p in model.parameters()),
                "depth": depth(model),
                "input_shape": " x ".join(map(str, input_shape)),
                "output_shape": " x ".join(map(str, output.shape[1:])),
                "variant": variant,
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# The reference at scale: LeNet-5 and AlexNet's grouped layer, rebuilt from reference.functional
# ---------------------------------------------------------------------------------------------


def _randomise(module, seed: int) -> None:
    """Seeded random parameters in place: normal, scaled by ``1/sqrt(fan_in)`` for weights."""
    torch, _ = _nn()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            fan_in = parameter[0].numel() if parameter.dim() > 1 else 1
            values = torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
            parameter.copy_(values / fan_in**0.5)


def _lenet_classic_reference(params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The 1998 LeNet-5 of :func:`_lenet_classic` in NumPy, from ``tinycnn.reference.functional``.

    ``params`` are the PyTorch model's, by ``state_dict`` name. The subsampling layers' 2x2 sums
    are ``avg_pool2d`` with ``divisor_override=1``; C3's connection table is an ordinary
    convolution whose weights are zero where an S2 map is not connected.
    """
    from tinycnn.reference import functional as F

    def subsampling(h, prefix):
        summed = F.avg_pool2d(h, 2, divisor_override=1)  # N, C, H/2, W/2
        return np.tanh(
            summed * params[f"{prefix}.coefficient"][:, None, None]
            + params[f"{prefix}.bias"][:, None, None]
        )

    c3_weight = np.zeros((len(LENET_C3_CONNECTIONS), 6, 5, 5), dtype=x.dtype)  # 16, 6, 5, 5
    for j, maps in enumerate(LENET_C3_CONNECTIONS):
        c3_weight[j, list(maps)] = params[f"3.weights.{j}"][0]
    h = np.tanh(F.conv2d(x, params["0.weight"], params["0.bias"]))  # C1: N, 6, 28, 28
    h = subsampling(h, "2")  # S2: N, 6, 14, 14
    h = np.tanh(F.conv2d(h, c3_weight, params["3.bias"]))  # C3: N, 16, 10, 10
    h = subsampling(h, "5")  # S4: N, 16, 5, 5
    h = np.tanh(F.conv2d(h, params["6.weight"], params["6.bias"]))  # C5: N, 120, 1, 1
    h = np.tanh(F.linear(h.reshape(len(h), -1), params["9.weight"], params["9.bias"]))  # F6: N, 84
    prototypes = params["11.prototypes"]  # 10, 84
    return ((h[:, None, :] - prototypes[None]) ** 2).sum(axis=-1)  # RBF output: N, 10


def reference_agreement_table(seed: int = 0, batch_size: int = 4) -> pd.DataFrame:
    """LeNet-5 and AlexNet's grouped conv2 block run by the NumPy reference and by PyTorch.

    The PyTorch layers come from this module's builders (on the CPU, float64, seeded random
    weights); the reference reads their weights and their hyper-parameters (stride, padding,
    groups, pooling window) and runs ``tinycnn.reference.functional`` on the same random batch:

    - "LeNet-5 (1998 paper)", forward: C1 to the RBF output, average pooling in S2/S4.
    - "AlexNet (2012 paper) conv2 block": conv2 (5x5, 2 groups, padding 2) -> ReLU -> 3x3
      max pool with stride 2 (overlapping windows), on 27 x 27 maps as in the paper; forward,
      then backward for a random upstream gradient (the gradients of input, weight and bias).

    Returns
    -------
    DataFrame with ``model``, ``input_shape``, ``output_shape``, ``quantity``,
    ``max_rel_error`` (`tinycnn.parity_tests.compare.max_relative_error` of the reference
    against PyTorch) and ``within_tolerance`` (the tolerance table's ``"model"`` float64 entry).
    """
    torch, _ = _nn()
    from tinycnn.parity_tests.compare import max_relative_error
    from tinycnn.parity_tests.tolerances import tolerance
    from tinycnn.reference import functional as F

    rtol = tolerance("model", "float64").rtol
    rng = np.random.default_rng(seed)
    rows = []

    def row(model, x, out, quantity, actual, expected):
        error = max_relative_error(actual, expected.detach().numpy())
        rows.append(
            {
                "model": model,
                "input_shape": " x ".join(map(str, x.shape)),
                "output_shape": " x ".join(map(str, out.shape)),
                "quantity": quantity,
                "max_rel_error": error,
                "within_tolerance": error <= rtol,
            }
        )

    # LeNet-5, 1998: the whole network, forward.
    lenet = _lenet_classic().double()
    _randomise(lenet, seed)
    params = {name: value.detach().numpy() for name, value in lenet.state_dict().items()}
    x = rng.normal(size=(batch_size, 1, 32, 32))
    with torch.no_grad():
        expected = lenet(torch.from_numpy(x))
    actual = _lenet_classic_reference(params, x)
    row("LeNet-5 (1998 paper)", x, actual, "output", actual, expected)

    # AlexNet, 2012: conv2 (2 groups) -> ReLU -> overlapping max pool, forward and backward.
    with torch.device("meta"):
        conv, _, pool = _alexnet_paper()[3:6]
    conv = conv.to_empty(device="cpu").double()
    _randomise(conv, seed + 1)
    x = rng.normal(size=(batch_size, conv.in_channels, 27, 27))
    x_torch = torch.from_numpy(x).requires_grad_(True)
    expected = torch.nn.functional.max_pool2d(
        torch.relu(conv(x_torch)), pool.kernel_size, pool.stride, pool.padding, pool.dilation
    )
    w, b = conv.weight.detach().numpy(), conv.bias.detach().numpy()
    conv_args = (conv.stride, conv.padding, conv.dilation, conv.groups)
    pool_args = (pool.kernel_size, pool.stride, pool.padding, pool.dilation)
    conv_out = F.conv2d(x, w, b, *conv_args)
    relu_out = F.relu(conv_out)
    actual = F.max_pool2d(relu_out, *pool_args)
    name = "AlexNet (2012 paper) conv2 block"
    row(name, x, actual, "output", actual, expected)
    grad_output = rng.normal(size=actual.shape)
    expected_grads = torch.autograd.grad(
        expected, (x_torch, conv.weight, conv.bias), torch.from_numpy(grad_output)
    )
    grad_relu = F.max_pool2d_backward(grad_output, relu_out, *pool_args)
    grad_conv = F.relu_backward(grad_relu, conv_out)
    actual_grads = F.conv2d_backward(grad_conv, x, w, b, *conv_args)
    for quantity, a, e in zip(
        ("grad_input", "grad_weight", "grad_bias"), actual_grads, expected_grads, strict=True
    ):
        row(name, x, actual, quantity, a, e)
    return pd.DataFrame(rows)
