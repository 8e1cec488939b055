"""Evaluation functions without mmengine dependencies."""
from .ytvis_ap import (AREA_RANGES, IOU_THRS, MAX_DETS, REC_THRS, STAT_NAMES,
                       accumulate_ytvis, evaluate_ytvis, format_ytvis_summary,
                       match_video, per_category_ap, summarize_ytvis, to_rle,
                       video_mask_iou)

__all__ = [
    'AREA_RANGES', 'IOU_THRS', 'MAX_DETS', 'REC_THRS', 'STAT_NAMES',
    'accumulate_ytvis', 'evaluate_ytvis', 'format_ytvis_summary',
    'match_video', 'per_category_ap', 'summarize_ytvis', 'to_rle',
    'video_mask_iou'
]
