"""TinyCNN and its MLP rivals written from scratch in NumPy (no PyTorch below this package)."""
