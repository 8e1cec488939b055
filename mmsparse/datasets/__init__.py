"""mmsparse.datasets."""
from .digits import SklearnDigitsDataset  # noqa: F401,E402
from .digits_transfer import TransferDigitsDataset  # noqa: F401,E402
from .ytvis_dataset import CheckedYouTubeVISDataset  # noqa: F401
