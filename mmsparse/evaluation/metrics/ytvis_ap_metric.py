"""YouTube-VIS AP metric that runs on current numpy."""
import warnings
from collections import OrderedDict, defaultdict
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmdet.evaluation.metrics import YouTubeVISMetric
from mmengine.logging import MMLogger

from mmsparse.registry import METRICS
from ..functional.ytvis_ap import (STAT_NAMES, accumulate_ytvis,
                                   format_ytvis_summary, per_category_ap,
                                   summarize_ytvis)

# mmdet's metric item names -> index into the 12 COCO stats
METRIC_ITEMS = OrderedDict(
    (item, i) for i, item in enumerate(
        ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l', 'AR@1', 'AR@10',
         'AR@100', 'AR_s@100', 'AR_m@100', 'AR_l@100')))
DEFAULT_ITEMS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')


@METRICS.register_module()
class YouTubeVISAPMetric(YouTubeVISMetric):
    """YouTube-VIS video mAP, a drop-in for mmdet's ``YouTubeVISMetric``.

    mmdet's metric evaluates with the vendored youtube-vis API, which uses
    ``np.float`` and fails on numpy >= 1.24. This subclass keeps mmdet's data
    flow (``process`` per video, collection across ranks in ``evaluate``, the
    same ground-truth / result JSON, ``format_only`` submission zip) and
    computes the numbers with :mod:`mmsparse.evaluation.functional.ytvis_ap`:
    COCO-style AP over IoU 0.50:0.05:0.95 with the spatio-temporal mask IoU

    .. math::
        IoU(d, g) = \\frac{\\sum_f |d_f \\cap g_f|}{\\sum_f |d_f \\cup g_f|}

    (`Video Instance Segmentation <https://arxiv.org/abs/1905.04804>`_).

    It also fixes three failure modes of the parent: no prediction at all
    (the API's ``loadRes`` indexes ``anns[0]``), a second evaluation in the
    same run (``_vis_meta_info`` lost its ``images`` key), and videos
    evaluated twice by a padding sampler (``round_up=True``).

    Keys are those of mmdet, e.g. ``youtube_vis/segm_mAP``, rounded to three
    decimals as mmdet does; the full summary is logged.

    Args:
        metric (str | list[str]): Metrics to evaluate, only
            ``'youtube_vis_ap'``. Defaults to ``'youtube_vis_ap'``.
        metric_items (Sequence[str], optional): Items to return, from
            ``mAP, mAP_50, mAP_75, mAP_s, mAP_m, mAP_l, AR@1, AR@10, AR@100,
            AR_s@100, AR_m@100, AR_l@100``. Defaults to None (the six mAP
            items).
        outfile_prefix (str, optional): Prefix of the result json / zip
            written when ``format_only=True``. Defaults to None (a temp dir).
        collect_device (str): Device used to collect results across ranks,
            ``'cpu'`` (mmdet's video metrics support only cpu).
            Defaults to ``'cpu'``.
        prefix (str, optional): Metric name prefix. Defaults to None
            (``'youtube_vis'``).
        format_only (bool): Only write the submission zip for the evaluation
            server, no evaluation. Defaults to False.
        classwise (bool): Also log the per-category AP. Defaults to False.
    """

    def __init__(self,
                 metric: Union[str, List[str]] = 'youtube_vis_ap',
                 metric_items: Optional[Sequence[str]] = None,
                 outfile_prefix: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 format_only: bool = False,
                 classwise: bool = False) -> None:
        if metric_items is not None:
            unknown = [m for m in metric_items if m not in METRIC_ITEMS]
            if unknown:
                raise ValueError(f'metric_items {unknown} not supported, '
                                 f'choose from {list(METRIC_ITEMS)}.')
        if collect_device != 'cpu':
            raise ValueError("collect_device must be 'cpu' for video "
                             f'metrics, got {collect_device!r}.')
        super().__init__(
            metric=metric,
            metric_items=metric_items,
            outfile_prefix=outfile_prefix,
            collect_device=collect_device,
            prefix=prefix,
            format_only=format_only)
        self.classwise = classwise

    def evaluate(self, size: int = 1) -> dict:
        """Collect across ranks and compute (see ``YouTubeVISMetric``).

        Resets the video bookkeeping afterwards: the parent replaces it by a
        plain dict without ``images``, which breaks the next evaluation.
        """
        try:
            return super().evaluate(size)
        finally:
            self._vis_meta_info = defaultdict(list)

    def _unique_videos(self, results: List) -> List:
        """Drop repeated videos (a padding sampler evaluates some twice).

        ``evaluate`` gathers ``results`` and ``_vis_meta_info['videos']`` in
        the same rank order, one entry per processed video.
        """
        videos = self._vis_meta_info['videos']
        if len(videos) != len(results):
            # Cannot pair them up; leave as is (mmdet's behaviour).
            return results
        seen, keep_results, keep_videos = set(), [], []
        for video, result in zip(videos, results):
            if video['id'] in seen:
                continue
            seen.add(video['id'])
            keep_results.append(result)
            keep_videos.append(video)
        if len(keep_videos) < len(videos):
            warnings.warn(f'{len(videos) - len(keep_videos)} videos were '
                          'evaluated more than once (sampler round_up?); '
                          'each counts once.')
        self._vis_meta_info['videos'] = keep_videos
        return keep_results

    def _format(self, results: List) -> Tuple[dict, list]:
        """Ground-truth json and predicted instances, as mmdet builds them."""
        if results:
            pred_chunks, gt_chunks = zip(*results)
        else:
            pred_chunks, gt_chunks = (), ()
        return self.format_gts(gt_chunks), self.format_preds(pred_chunks)

    def compute_metrics(self, results: List) -> Dict[str, float]:
        """Compute YouTube-VIS AP from the collected per-video results.

        Args:
            results (list): ``(predictions, ground truths)`` of each video,
                as produced by ``process_video``.

        Returns:
            dict[str, float]: ``segm_<item>`` for each metric item (-1 where
            undefined); empty when ``format_only``.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        results = self._unique_videos(list(results))
        gt_json, predictions = self._format(results)
        if self.format_only:
            self.save_pred_results(predictions)
            return dict()
        if not predictions:
            logger.warning('YouTubeVISAPMetric: no predicted instance in '
                           f'{len(results)} videos, every defined AP is 0.')
        acc = accumulate_ytvis(gt_json, predictions)
        stats = summarize_ytvis(acc['precision'], acc['recall'])
        logger.info('YouTube-VIS segm evaluation on '
                    f'{len(gt_json["videos"])} videos, '
                    f'{len(gt_json["annotations"])} gt and '
                    f'{len(predictions)} predicted instances:\n' +
                    format_ytvis_summary(stats))
        if self.classwise:
            self._log_classwise(acc, logger)
        items = self.metric_items or DEFAULT_ITEMS
        return OrderedDict(
            (f'segm_{item}',
             float(f'{stats[STAT_NAMES[METRIC_ITEMS[item]]]:.3f}'))
            for item in items)

    def _log_classwise(self, acc: dict, logger: MMLogger) -> None:
        """Log a table of AP@[.5:.95] per category."""
        names = {c['id']: c['name'] for c in self.categories}
        aps = per_category_ap(acc['precision'])
        width = max([len('category')] + [len(n) for n in names.values()])
        lines = [f'{"category":<{width}} | AP', '-' * (width + 9)]
        for cat_id, ap in zip(acc['cat_ids'], aps):
            value = f'{ap:.3f}' if ap > -1 else 'n/a (no gt)'
            lines.append(f'{names.get(cat_id, cat_id):<{width}} | {value}')
        logger.info('YouTube-VIS per-category AP:\n' + '\n'.join(lines))
