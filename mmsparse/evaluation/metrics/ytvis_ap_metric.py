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

    It also fixes four failure modes of the parent: no prediction at all
    (the API's ``loadRes`` indexes ``anns[0]``), a second evaluation in the
    same run (``_vis_meta_info`` lost its ``images`` key), videos evaluated
    twice by a padding sampler (``round_up=True``), and category ids: the
    parent writes ``label + 1`` into the result json / server zip and
    rebuilds the ground truth with ids ``1..N``, which is right only for
    datasets whose ids are 1..N in class order (YouTube-VIS 2021 with all 40
    classes). Here label ``i`` maps to ``dataset_meta['cat_ids'][i]``, the
    dataset's own category id (:class:`CheckedYouTubeVISDataset` puts
    ``cat_ids`` into its ``metainfo``), in the exported results and in the
    local ground truth alike. Without ``cat_ids`` in ``dataset_meta`` (e.g.
    mmdet's plain ``YouTubeVISDataset``) it warns and falls back to
    ``label + 1``. Predicted labels without a class in ``dataset_meta``
    (the model's ``num_classes`` exceeds the dataset's classes) are left out
    with a warning.

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
        metrics = metric if isinstance(metric, list) else [metric]
        if any(m != 'youtube_vis_ap' for m in metrics):
            raise KeyError("YouTubeVISAPMetric: metric must be 'youtube_vis_ap', "
                           f'got {metric!r}')
        if metric_items is not None:
            unknown = [m for m in metric_items if m not in METRIC_ITEMS]
            if unknown:
                raise ValueError(f'YouTubeVISAPMetric: metric_items {unknown} not supported, '
                                 f'choose from {list(METRIC_ITEMS)}.')
        if collect_device != 'cpu':
            raise ValueError("YouTubeVISAPMetric: collect_device must be 'cpu' for video "
                             f'metrics, got {collect_device!r}.')
        super().__init__(
            metric=metric,
            metric_items=metric_items,
            outfile_prefix=outfile_prefix,
            collect_device=collect_device,
            prefix=prefix,
            format_only=format_only)
        self.classwise = classwise
        self._warned_no_cat_ids = False
        self._warned_labels = set()

    def _category_ids(self) -> List[int]:
        """The dataset's category id of each label (``label + 1`` without ``cat_ids``)."""
        classes = self.dataset_meta['classes']
        cat_ids = self.dataset_meta.get('cat_ids')
        if cat_ids is None:
            if not self._warned_no_cat_ids:
                self._warned_no_cat_ids = True
                MMLogger.get_current_instance().warning(
                    "YouTubeVISAPMetric: dataset_meta has no 'cat_ids' (use "
                    'CheckedYouTubeVISDataset); writing category_id = label + 1, '
                    'which is right only if the category ids are 1..N in the '
                    "order of metainfo['classes']")
            return list(range(1, len(classes) + 1))
        if len(cat_ids) != len(classes):
            raise ValueError(f"YouTubeVISAPMetric: dataset_meta['cat_ids'] has "
                             f"{len(cat_ids)} entries but dataset_meta['classes'] "
                             f'has {len(classes)}')
        return [int(c) for c in cat_ids]

    def format_gts(self, gts: Tuple[List]) -> dict:
        """Gather the ground truth, with the dataset's category ids."""
        gt_json = super().format_gts(gts)
        self.categories = [
            dict(id=cat_id, name=name)
            for cat_id, name in zip(self._category_ids(), self.dataset_meta['classes'])
        ]
        gt_json['categories'] = self.categories
        return gt_json

    def _format_one_video_gts(self, gt_dicts: Tuple[dict]) -> List:
        """mmdet's per-video ground truth, ``category_id`` = the dataset's id."""
        anns = super()._format_one_video_gts(gt_dicts)
        cat_ids = self._category_ids()
        for ann in anns:  # the parent writes label + 1
            ann['category_id'] = cat_ids[ann['category_id'] - 1]
        return anns

    def _format_one_video_preds(self, pred_dicts: Tuple[dict]) -> List:
        """mmdet's per-video predictions, ``category_id`` = the dataset's id.

        Instances whose (majority) label has no class in ``dataset_meta`` are
        dropped with a warning: the model predicts more classes than the
        dataset defines.
        """
        preds = super()._format_one_video_preds(pred_dicts)
        cat_ids = self._category_ids()
        kept = []
        for pred in preds:  # the parent writes label + 1
            label = pred['category_id'] - 1
            if not 0 <= label < len(cat_ids):
                if label not in self._warned_labels:
                    self._warned_labels.add(label)
                    MMLogger.get_current_instance().warning(
                        f'YouTubeVISAPMetric: a predicted instance has label {label}, '
                        f"but dataset_meta['classes'] has {len(cat_ids)} classes (does the "
                        "model's num_classes match len(metainfo['classes'])?); such "
                        'instances are left out')
                continue
            pred['category_id'] = cat_ids[label]
            kept.append(pred)
        return kept

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
