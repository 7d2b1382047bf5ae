"""Activation maximisation: what a filter, a unit or a class responds to.

:func:`maximize` optimises one picture per target (:mod:`.targets`) in a decorrelated
parameterisation (:mod:`.parameterize`) under random transforms (:mod:`.robustness`), and
finds the example images that excite each target most (:mod:`.examples`).
"""

from vizcli.actmax.optimize import ActmaxOptions, ActmaxReport, TargetResult, maximize

__all__ = ["ActmaxOptions", "ActmaxReport", "TargetResult", "maximize"]
