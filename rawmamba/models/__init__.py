"""rawmamba.models: the RAWMamba network, its building blocks, and ``create_model``."""

from rawmamba.models.rawmamba import RAWMamba
from rawmamba.models.registry import create_model, list_models, model_arguments

__all__ = ["RAWMamba", "create_model", "list_models", "model_arguments"]
