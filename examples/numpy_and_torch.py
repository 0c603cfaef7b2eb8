"""Train TinyCNN in NumPy, move its weights into the PyTorch twin, and compare the two.

    python examples/numpy_and_torch.py

Uses only the public API: :func:`tinycnn.reference.build_model`, :func:`tinycnn.reference.train`
and :func:`tinycnn.torch_impl.from_reference`. Prints the validation accuracy and the largest
difference between the two backends' logits (float64: around 1e-15).
"""

import numpy as np
import torch

from tinycnn import reference, torch_impl


def main(seed: int = 0, epochs: int = 20) -> float:
    dataset = reference.make_dataset(n_classes=3, seed=seed)
    model = reference.build_model("tinycnn", 3, seed=seed)  # 114 parameters, float64
    history = reference.train(
        model, dataset, reference.TrainConfig(epochs=epochs, seed=seed), progress=False
    )
    twin = torch_impl.from_reference(model)  # same weights, as a torch.nn.Module
    with torch.no_grad():
        torch_logits = twin(torch.from_numpy(dataset.x_val)).numpy()  # N, 3
    numpy_logits = model.forward_with_activations(dataset.x_val)[0]  # N, 3
    difference = float(np.max(np.abs(numpy_logits - torch_logits)))
    print(
        f"after {epochs} epochs: validation accuracy {history.val_acc[-1]:.3f}; "
        f"largest NumPy-PyTorch logit difference {difference:.1e}"
    )
    return difference


if __name__ == "__main__":
    main()
