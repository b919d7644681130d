"""Names that the command line offers as choices, importable without torch (so that ``--help`` answers at once);
the modules that implement them take them from here."""

REFINEMENTS = ("none", "rbf")  # rawmamba.models.sample_refinement
BLENDS = ("linear", "cosine")  # rawmamba.infer: feathering ramps across tile overlaps
EVAL_BASELINES = ("global-fit", "interpolation", "inverse-gamma")  # rawmamba.evaluate_checkpoints.BASELINES
