"""Names that the command line offers as choices, importable without torch (so that ``--help`` answers at once).
The refinements and blends are taken from here by the modules that implement them; the method names are held
equal to their registries' by ``tests/test_cli.py``."""

REFINEMENTS = ("none", "rbf")  # rawmamba.models.sample_refinement
BLENDS = ("linear", "cosine")  # rawmamba.infer: feathering ramps across tile overlaps
EVAL_BASELINES = ("global-fit", "interpolation", "inverse-gamma")  # rawmamba.evaluate_checkpoints.BASELINES
BENCH_METHODS = ("inverse-gamma", "global-fit", "interpolation", "rir", "sam", "inf")  # rawmamba.baselines.METHODS
