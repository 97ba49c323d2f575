"""Evaluation: intrinsic test loss, extrinsic zero-shot accuracy (lm-eval), runtime."""

from complaw.evaluate.extrinsic import ZeroShotResult, zero_shot
from complaw.evaluate.intrinsic import LossResult, lm_loss
from complaw.evaluate.runtime import RuntimeResult, measure_runtime

__all__ = ["LossResult", "RuntimeResult", "ZeroShotResult", "lm_loss", "measure_runtime", "zero_shot"]
