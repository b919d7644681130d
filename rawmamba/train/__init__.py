"""Training: typed config, the loop (single process or torchrun), self-describing checkpoints."""
