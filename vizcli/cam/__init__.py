"""Class activation maps and gradient saliency: one base, one small class per method."""

from vizcli.cam import methods, saliency  # noqa: F401 - importing registers the methods
from vizcli.cam.base import METHODS, CamMethod, LayerProbe, get_method

__all__ = ["METHODS", "CamMethod", "LayerProbe", "get_method"]
