"""Report sections 1-3 and 12: parameter counts, worked examples, layer summary, architectures.

Expected values are worked out by hand here (or are the published counts of the architectures),
never read back from the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
from tinycnn.reports import architectures, static

from tinycnn import reference


def test_connectivity_counts_dense_and_conv_layers_by_hand():
    table = static.connectivity_table(
        image_shapes=((4, 4, 2), (10, 6, 1)), hidden_sizes=(5, 7), n_filters=3, kernel_size=2
    )
    first, second = table.iloc[0], table.iloc[1]
    assert first["inputs"] == 32
    assert first["dense_5_hidden"] == 32 * 5 + 5 and first["dense_7_hidden"] == 32 * 7 + 7
    assert first["conv_3_filters_2x2"] == 3 * (2 * 2 * 2) + 3
    # The conv count depends on the channels, never on the resolution.
    assert second["conv_3_filters_2x2"] == 3 * (2 * 2 * 1) + 3
    assert first["dense_over_conv"] == pytest.approx(165 / 27)


def test_lecture_image_sizes_include_the_imagenet_row():
    table = static.connectivity_table()
    imagenet = table[table["image"] == "224 x 224 x 3"].iloc[0]
    assert imagenet["dense_100_hidden"] == 224 * 224 * 3 * 100 + 100
    assert imagenet["dense_1000_hidden"] == 224 * 224 * 3 * 1000 + 1000


@pytest.mark.parametrize(("kernel", "image", "pixels"), [(3, 28, 9), (5, 12, 25), (1, 4, 1)])
def test_receptive_field_is_the_kernel_area(kernel, image, pixels):
    assert static.receptive_field(kernel, image) == pixels


def test_convolution_is_translation_equivariant_and_the_check_can_fail():
    from tinycnn.reference import ops

    rng = np.random.default_rng(1)
    x, w, b = rng.normal(size=(2, 1, 9, 9)), rng.normal(size=(2, 1, 3, 3)), rng.normal(size=2)
    conv = lambda images: ops.conv2d_forward(images, w, b)  # noqa: E731
    assert static.translation_equivariance_error(conv, x) < 1e-12
    # A layer whose weights depend on the position (no weight sharing) is not equivariant.
    gain = np.linspace(1.0, 2.0, 7)
    unshared = lambda images: conv(images) * gain  # noqa: E731
    assert static.translation_equivariance_error(unshared, x) > 0.01


def test_key_ideas_table_matches_the_lecture_geometry():
    table = static.key_ideas_table().set_index("quantity")
    assert table.loc["input pixels seen by one unit", "conv"] == 9
    assert table.loc["input pixels seen by one unit", "dense"] == 28 * 28
    assert table.loc["positions where one weight is used", "conv"] == 26 * 26
    assert np.isnan(table.loc["translation equivariance error (1-pixel shift)", "dense"])


def test_format_matrix_writes_rows_and_no_negative_zero():
    assert static.format_matrix([[5.0, 2.0], [4.0, -0.0]]) == "5 2 / 4 0"
    assert static.format_matrix(7.0) == "7"
    assert static.format_matrix(np.array([["g1", "0"]], dtype=object)) == "g1 0"


def test_routing_labels_name_each_upstream_gradient():
    upstream = np.array([[10.0, 20.0]])
    dx = np.array([[0.0, 20.0, 0.0, 10.0]])
    assert static.format_matrix(static.routing_labels(dx, upstream, ["a", "b"])) == "0 b 0 a"


def test_worked_examples_agree_with_torch_and_with_hand_arithmetic():
    table = static.worked_examples_table().set_index(["example", "quantity"])
    assert table["agree"].all()
    # Hand arithmetic, independent of both implementations.
    patch = np.array(static.EXAMPLE_INPUTS["cross_correlation_patch"])
    kernel = np.array(static.EXAMPLE_INPUTS["cross_correlation_kernel"])
    assert table.loc[("cross-correlation", "output"), "numpy"] == f"{(patch * kernel).sum():g}"
    x = np.array(static.EXAMPLE_INPUTS["by_hand_input"])
    k = np.array(static.EXAMPLE_INPUTS["by_hand_kernel"])
    by_hand = (x[1:4, 1:4] * k).sum()
    assert table.loc[("convolution by hand", "output at (1,1)"), "numpy"] == f"{by_hand:g}"
    pooled = np.array(static.EXAMPLE_INPUTS["pool_input"]).reshape(2, 2, 2, 2).max(axis=(1, 3))
    assert table.loc[("max pooling", "output"), "numpy"] == static.format_matrix(pooled)
    routing = table.loc[("pooling backward", "input gradient"), "numpy"].split(" / ")
    assert routing[1].split()[0] == "g1"  # the 7 at (1, 0) wins the first window


def test_output_sizes_follow_the_formula():
    table = static.output_size_table()
    assert table["agree"].all()
    for _, row in table.iterrows():
        assert row["formula"] == (row["W"] - row["K"] + 2 * row["P"]) // row["S"] + 1


def test_layer_summary_of_a_non_default_tinycnn():
    table = static.layer_summary_table(reference.TinyCNN(n_filters=2, kernel_size=5))
    rows = table.set_index("layer")
    assert rows.loc["Conv2D (2 filters, 5x5)", "n_parameters"] == 2 * 25 + 2
    assert rows.loc["Conv2D (2 filters, 5x5)", "output_shape"] == "2 x 4 x 4"
    assert rows.loc["Flatten", "output_shape"] == "8"
    assert rows.loc["Dense + bias", "n_parameters"] == 8 * 3 + 3
    assert rows.loc["Total", "n_parameters"] == 52 + 27
    assert table["share"].iloc[:-1].sum() == pytest.approx(1.0)


# -- section 12 --------------------------------------------------------------------------------

#: Published parameter counts (torchvision's model cards; LeCun et al. 1998 for the paper LeNet).
PUBLISHED = {
    "TinyCNN": 114,
    "LeNet-5 (1998 paper)": 60_840,
    "LeNet-5 (modern)": 61_706,
    "AlexNet (2012 paper)": 60_965_224,
    "AlexNet (torchvision)": 61_100_840,
    "VGG-16": 138_357_544,
    "ResNet-50": 25_557_032,
}
DEPTHS = {
    "TinyCNN": 2,
    "LeNet-5 (1998 paper)": 5,
    "LeNet-5 (modern)": 5,
    "AlexNet (2012 paper)": 8,
    "AlexNet (torchvision)": 8,
    "VGG-16": 16,
    "ResNet-50": 50,
}


@pytest.fixture(scope="module")
def architecture_table():
    return architectures.architecture_table().set_index("architecture")


def test_architectures_have_the_published_parameter_counts(architecture_table):
    assert architecture_table["n_parameters"].to_dict() == PUBLISHED


def test_architecture_depths_count_the_main_path(architecture_table):
    assert architecture_table["depth"].to_dict() == DEPTHS


def test_architectures_run_a_meta_forward_pass(architecture_table):
    classes = architecture_table["output_shape"].to_dict()
    assert classes.pop("TinyCNN") == "3"
    assert set(classes.values()) == {"10", "1000"}


def test_meta_builds_allocate_no_memory():
    import torch

    model = architectures.build("VGG-16")
    assert all(p.device == torch.device("meta") for p in model.parameters())


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown architecture 'LeNet-6'"):
        architectures.build("LeNet-6")


# -- section 12: the reference at scale ---------------------------------------------------------


def test_reference_rebuilds_lenet5_and_alexnets_grouped_block():
    table = architectures.reference_agreement_table(seed=3, batch_size=2)
    assert table["quantity"].tolist() == [
        "output",
        "output",
        "grad_input",
        "grad_weight",
        "grad_bias",
    ]
    # LeNet-5 ends in 10 RBF units; AlexNet's 27 x 27 maps stay 27 x 27 through the padded 5x5
    # conv2 (256 filters) and become (27 - 3) // 2 + 1 = 13 after the 3x3, stride-2 pool.
    assert table["output_shape"].tolist() == ["2 x 10"] + ["2 x 256 x 13 x 13"] * 4
    assert table["input_shape"].tolist() == ["2 x 1 x 32 x 32"] + ["2 x 96 x 27 x 27"] * 4
    assert table["within_tolerance"].all(), table.to_string()


@pytest.mark.parametrize(
    ("function", "bug", "failing"),
    [
        # A ReLU that lets negative values through changes the block's output. (Its gradients
        # stay right: the correct relu_backward zeroes what the wrong pooling winners receive.)
        ("relu", lambda x: x.copy(), {"output"}),
        # A ReLU backward that passes every gradient: input and weight gradients go wrong.
        ("relu_backward", lambda dy, x: dy.copy(), {"grad_input", "grad_weight", "grad_bias"}),
    ],
    ids=["forward-bug", "backward-bug"],
)
def test_reference_agreement_fails_for_a_wrong_building_block(monkeypatch, function, bug, failing):
    from tinycnn.reference import functional

    monkeypatch.setattr(functional, function, bug)
    table = architectures.reference_agreement_table(seed=3, batch_size=1)
    alexnet = table[table["model"] != "LeNet-5 (1998 paper)"]
    assert set(alexnet.loc[~alexnet["within_tolerance"], "quantity"]) == failing
    assert table["within_tolerance"].iloc[0]  # LeNet-5 uses neither
