"""Save and load model parameters as ``.npz`` files that both backends read.

A checkpoint holds the parameter arrays under their ``state_dict`` names plus one JSON entry,
``__model__``, naming the model class and its constructor arguments, so a file saved by the
NumPy backend rebuilds the same architecture in PyTorch and the other way round.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping

import numpy as np

__all__ = ["CheckpointError", "load_checkpoint", "save_checkpoint"]

_META_KEY = "__model__"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read, or that does not describe a model."""


def save_checkpoint(
    path: str | os.PathLike, params: Mapping[str, np.ndarray], model: str, config: Mapping
) -> None:
    """Write ``params`` and the model description to ``path`` (``.npz``, uncompressed).

    Parameters
    ----------
    path : path-like
        Destination file; NumPy adds no extension if it already ends in ``.npz``.
    params : dict of str to ndarray
        Parameters under their ``state_dict`` names.
    model : str
        ``"tinycnn"`` or ``"mlp"``.
    config : dict
        Constructor arguments that fix the architecture (``model.config``).
    """
    meta = json.dumps({"model": model, "config": dict(config)}, sort_keys=True)
    arrays = {name: np.asarray(value) for name, value in params.items()}
    with open(path, "wb") as handle:
        np.savez(handle, **arrays, **{_META_KEY: np.array(meta)})


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], str, dict]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns
    -------
    params : dict of str to ndarray
    model : str
    config : dict

    Raises
    ------
    CheckpointError
        If the file is missing, unreadable, not an ``.npz`` archive, or lacks the description.
    """
    if os.path.isfile(path) and not zipfile.is_zipfile(path):
        raise CheckpointError(f"cannot read checkpoint {os.fspath(path)!r}: not an .npz archive")
    try:
        with np.load(path, allow_pickle=False) as archive:
            contents = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise CheckpointError(f"cannot read checkpoint {os.fspath(path)!r}: {error}") from None
    if _META_KEY not in contents:
        raise CheckpointError(
            f"{os.fspath(path)!r} is not a tinycnn checkpoint (no model description)"
        )
    try:
        meta = json.loads(str(contents.pop(_META_KEY)))
        if not (isinstance(meta.get("model"), str) and isinstance(meta.get("config"), dict)):
            raise TypeError("expected a model name and a dict of constructor arguments")
        return contents, meta["model"], meta["config"]
    except (json.JSONDecodeError, AttributeError, TypeError) as error:
        raise CheckpointError(
            f"{os.fspath(path)!r} has a damaged model description: {error}"
        ) from None
