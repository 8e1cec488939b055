"""Time left of a run, from a cost model fitted on its finished rows."""
from typing import Iterable, Optional, Tuple

import numpy as np


class CostModel:
    """Seconds of a row: ``rate * units + fixed``.

    ``units`` is what scales the row's cost (training iterations or
    epochs), ``fixed`` the part that does not (the test). Before any row is
    finished the given defaults hold; :meth:`fit` replaces them with the
    means over finished rows (rate: seconds per unit of each row's
    training, fixed: its remaining seconds).

    Args:
        rate (float): Seconds per unit before any row finished.
        fixed (float): Fixed seconds per row before any row finished.
            Defaults to 0.
    """

    def __init__(self, rate: float, fixed: float = 0.0) -> None:
        self.rate = float(rate)
        self.fixed = float(fixed)
        self.fitted_on = 0

    def fit(self, samples: Iterable[Tuple[Optional[float], float, float]]
            ) -> 'CostModel':
        """Fit on ``(training seconds, units, fixed seconds)`` of finished
        rows; rows whose training was not timed (None or 0: reused) are
        left out. Returns self."""
        timings = [(train / units, fixed) for train, units, fixed in samples
                   if train and units]
        if timings:
            self.rate, self.fixed = (float(v) for v in np.mean(timings, 0))
        self.fitted_on = len(timings)
        return self

    def predict(self, units: float) -> float:
        """Seconds of one row of ``units`` units."""
        return self.rate * units + self.fixed

    def left(self, pending_units: Iterable[float]) -> float:
        """Seconds of the rows still to run (``units`` of each)."""
        return float(sum(self.predict(u) for u in pending_units))
