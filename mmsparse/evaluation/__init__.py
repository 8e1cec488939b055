"""mmsparse.evaluation: YouTube-VIS AP that runs on current numpy."""
from .functional import *  # noqa: F401,F403
from .metrics import *  # noqa: F401,F403
