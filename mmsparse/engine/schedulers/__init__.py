"""Parameter schedulers of mmsparse."""
from .relative_multistep_lr import RelativeMultiStepLR

__all__ = ['RelativeMultiStepLR']
