"""Per-item records of a row: what the bootstrap over test items resamples.

Two kinds of rows keep them:

* classification rows: the correctness of every test image, as a string
  of ``0``/``1`` (:func:`image_correctness`), with the id of the item each
  image belongs to (several rendered variants of one digit are one item:
  the bootstrap draws items, :func:`item_means`);
* video rows: the predictions matched once per video into
  :class:`~mmsparse.evaluation.functional.ytvis_bootstrap.YTVISVideoRecords`
  (:func:`scored_video_test`), from which AP on any draw of videos is
  recomputed (:func:`video_scores`).
"""
from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Tuple

import numpy as np

from .report import ScoreFn, cached_score
from .vis import Run, test_predictions

#: The evaluator rounds AP to 3 decimals: larger differences between the AP
#: of the saved predictions and the evaluator's are an error.
AP_TOLERANCE = 6e-4


def image_correctness(runner: Any, dataloader_cfg: Any,
                      item_key: Optional[str] = None) -> Dict:
    """Per-image correctness of a classifier on a dataloader.

    Args:
        runner: An mmengine ``Runner`` (its ``model`` is scored in eval
            mode, through ``test_step``).
        dataloader_cfg: The dataloader config (built with
            ``Runner.build_dataloader``; not shuffled).
        item_key (str, optional): Field of the dataset's data info that
            names the item an image belongs to. Defaults to None.

    Returns:
        dict: ``accuracy`` (%), ``correct`` (a ``0``/``1`` per image, in
        dataset order) and, with ``item_key``, ``items`` (its value per
        image).
    """
    import torch
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(dataloader_cfg)
    model = runner.model
    model.eval()
    correct = []
    with torch.no_grad():
        for data in loader:
            for sample in model.test_step(data):
                correct.append(
                    int(sample.pred_label.flatten()[0]) == int(
                        sample.gt_label.flatten()[0]))
    correct = np.asarray(correct, dtype=np.int64)
    out = dict(accuracy=float(100.0 * correct.mean()),
               correct=''.join(str(c) for c in correct))
    if item_key is not None:
        dataset = loader.dataset
        out['items'] = [dataset.get_data_info(i)[item_key]
                        for i in range(len(dataset))]
    return out


def tested_correctness(runner: Any, item_key: str,
                       metric: str = 'accuracy/top1',
                       tolerance: float = 1e-3) -> Dict:
    """``runner.test()`` and the per-image correctness on the runner's test
    dataloader (:func:`image_correctness`), checked to agree.

    Args:
        runner: A trained mmengine ``Runner``.
        item_key (str): Field of the data info naming each image's item.
        metric (str): The accuracy key of ``runner.test()``. Defaults to
            'accuracy/top1'.
        tolerance (float): Largest difference (points) between the two
            accuracies. Defaults to 1e-3.

    Returns:
        dict: ``top1`` (of ``runner.test()``), ``correct`` and ``items``.

    Raises:
        RuntimeError: The per-image accuracy is not ``runner.test()``'s.
    """
    top1 = float(runner.test()[metric])
    out = image_correctness(runner, runner.cfg.test_dataloader, item_key)
    if abs(out['accuracy'] - top1) > tolerance:
        raise RuntimeError(f"per-image accuracy {out['accuracy']} != "
                           f'runner.test() {top1}')
    return dict(top1=top1, correct=out['correct'], items=out['items'])


def item_means(rows: Sequence[dict], correct_key: str,
               item_key: str) -> np.ndarray:
    """Correctness per item, the mean over its images and over ``rows``.

    Args:
        rows (Sequence[dict]): Rows scored on the same images, each with
            ``correct_key`` (a ``0``/``1`` string) and ``item_key`` (the
            item of each image).
        correct_key (str): The rows' field of the correctness string.
        item_key (str): The rows' field of the item ids.

    Returns:
        np.ndarray: One value per item, items in sorted order.
    """
    items = np.asarray(rows[0][item_key])
    uniq, inv = np.unique(items, return_inverse=True)
    total = np.zeros(len(uniq))
    for r in rows:
        c = np.frombuffer(r[correct_key].encode(), np.uint8) - 48
        total += np.bincount(inv, weights=c, minlength=len(uniq))
    return total / (len(rows) * np.bincount(inv))


def item_mean_score(correct_key: str, item_key: str,
                    scale: float = 100.0) -> Callable[[Sequence[dict]],
                                                      ScoreFn]:
    """``group_score`` (:func:`mmsparse.experiment.tables.contrast`) of
    classification rows: ``scale`` x the mean over the drawn items of their
    correctness pooled over the rows (:func:`item_means`)."""
    def group_score(rows: Sequence[dict]) -> ScoreFn:
        per_item = item_means(rows, correct_key, item_key)
        return lambda idx: scale * per_item[idx].mean()
    return group_score


def scored_video_test(run: Run, root: str, config: str, ckpt: str,
                      work: str, options: Sequence[str], gt: Dict,
                      name: str) -> Tuple[Dict, Any, Dict, float]:
    """``tools/test.py`` (:func:`~mmsparse.experiment.vis.test_predictions`)
    and its predictions matched per held-out video.

    Args:
        run (callable): ``run(cmd, log_file) -> seconds``.
        root (str): The repository root.
        config (str): The row's config.
        ckpt (str): Its checkpoint.
        work (str): The row's work dir.
        options (Sequence[str]): ``--cfg-options`` of the test.
        gt (dict): The held-out ground truth
            (:func:`~mmsparse.experiment.vis.heldout_gt`).
        name (str): The row (named by the error).

    Returns:
        tuple: The evaluator's metrics, the ``YTVISVideoRecords``, their
        ``stats()`` on all videos and the seconds of the test.

    Raises:
        RuntimeError: The AP of the records is not the evaluator's.
    """
    from mmsparse.evaluation.functional.ytvis_bootstrap import \
        YTVISVideoRecords
    metrics, predictions, took = test_predictions(run, root, config, ckpt,
                                                  work, options)
    records = YTVISVideoRecords.from_predictions(gt, predictions)
    stats = records.stats()
    ap_metric = metrics['youtube_vis/segm_mAP']
    if abs(stats['AP'] - ap_metric) > AP_TOLERANCE:
        raise RuntimeError(f'{name}: AP from the saved predictions '
                           f'{stats["AP"]:.4f} != evaluator AP {ap_metric:.3f}')
    return metrics, records, stats, took


def timings(train_seconds: Optional[float], test_seconds: float) -> Dict:
    """``train_seconds`` (None: the training was reused) and
    ``test_seconds`` of a row, to 0.1 s."""
    return dict(train_seconds=None if train_seconds is None
                else round(train_seconds, 1),
                test_seconds=round(test_seconds, 1))


def video_scores(rows: Iterable[dict], metric: str = 'AP',
                 key: str = 'records') -> Tuple[Dict[str, Any],
                                                Dict[str, ScoreFn]]:
    """The rows' video records (row name -> ``YTVISVideoRecords``) and
    their ``metric`` on a draw of videos (row name -> ``score(indices)``,
    memoised on the draw)."""
    from mmsparse.evaluation.functional.ytvis_bootstrap import \
        YTVISVideoRecords
    records = {r['name']: YTVISVideoRecords.from_dict(r[key]) for r in rows}
    scores = {name: cached_score(lambda idx, rec=rec: rec.stats(idx)[metric])
              for name, rec in records.items()}
    return records, scores
