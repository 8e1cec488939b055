"""YouTube-VIS AP that also writes its ground truth and predictions.

The paired bootstrap over test videos (``mmsparse.utils.stats``) recomputes
AP on resampled video sets, so it needs what the metric scored: this
subclass of :class:`~mmsparse.evaluation.YouTubeVISAPMetric` dumps the
ground-truth json and the predicted video instances it built to
``dump_file`` (json) and then computes AP as its parent does. Imported by
``run_toy_pipeline.py`` through ``custom_imports`` (with the repository root
on ``PYTHONPATH``).
"""
import os
import os.path as osp
from typing import Dict, List

import mmengine

from mmsparse.evaluation.metrics.ytvis_ap_metric import YouTubeVISAPMetric
from mmsparse.registry import METRICS


@METRICS.register_module()
class DumpingYouTubeVISAPMetric(YouTubeVISAPMetric):
    """:class:`YouTubeVISAPMetric` + a json of its inputs.

    Args:
        dump_file (str): Output json with ``gt`` and ``predictions``.
        **kwargs: Arguments of :class:`YouTubeVISAPMetric`.
    """

    def __init__(self, dump_file: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dump_file = dump_file

    def compute_metrics(self, results: List) -> Dict[str, float]:
        results = self._unique_videos(list(results))
        gt_json, predictions = self._format(results)
        os.makedirs(osp.dirname(osp.abspath(self.dump_file)), exist_ok=True)
        mmengine.dump(dict(gt=gt_json, predictions=predictions),
                      self.dump_file)
        return super().compute_metrics(results)
