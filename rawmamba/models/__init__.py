"""rawmamba.models: the RAWMamba network, its building blocks, the learned baselines, and ``create_model``."""

from rawmamba.models.blind_unet import BlindUNet
from rawmamba.models.cam_unet import CAMUNet
from rawmamba.models.rawmamba import RAWMamba
from rawmamba.models.registry import create_model, list_models, model_arguments
from rawmamba.models.rvd_net import RVDNet

__all__ = ["BlindUNet", "CAMUNet", "RAWMamba", "RVDNet", "create_model", "list_models", "model_arguments"]
