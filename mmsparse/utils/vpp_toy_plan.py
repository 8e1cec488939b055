"""The plan of the VPP toy comparison (``projects/vpp/run_toy_comparison.py``):
its toy sets, VPP schedules, selectors and labels, and the ``--cfg-options``
of its rows.

The options address the model of every row: a ``model.backbone.*`` key
means the ViT, which the VPP configs wrap (``model.backbone.backbone``), so
there it is moved (:func:`move_key`); keys must exist in the configs, the
keys the script sets itself are refused (:func:`check_model_options`).
Functions take loaded configs (``mmengine.Config``); config paths are
relative to the repository root.
"""
import copy
from typing import Any, List, Mapping, Optional, Tuple

from mmsparse.experiment import check_cfg_options, format_option

DENSE = 'configs/toy/mask2former_vit_toy-ytvis21_hard.py'
SCHEDULES = {
    'paper': dict(
        config='configs/toy/vpp_mask2former_vit_toy-ytvis21_hard_paper.py',
        label='paper (0.7/0.56/0.448/0.358 at blocks 1-4)'),
    'single': dict(
        config='configs/toy/vpp_mask2former_vit_toy-ytvis21_hard.py',
        label='single stage (0.4 at block 1)'),
    # the paper schedule with a pixel decoder that follows the keep set
    # (KeepSetPixelDecoder); meant with --selectors temporal
    'paper_keepset': dict(
        config='configs/toy/vpp_mask2former_vit_toy-ytvis21_hard_paper_keepset-decoder.py',
        label='paper + keep-set decoder'),
    'paper_reuse': dict(
        config='configs/toy/vpp_mask2former_vit_toy-ytvis21_hard_paper_keepset-decoder-reuse.py',
        label='paper + keep-set decoder, temporal reuse'),
    'paper_imagedec': dict(
        config='configs/toy/vpp_mask2former_vit_toy-ytvis21_hard_paper_image-decoder.py',
        label='paper + image-score decoder'),
    # the closure toy (--toy closure): 12-block ViT, the paper's blocks
    'closure_paper': dict(
        config='configs/toy/vpp_mask2former_vit_toy-ytvis21_closure_paper.py',
        label='paper (0.7/0.56/0.448/0.358 at blocks 1/3/6/9)', toy='closure'),
    'closure_pkr0.4': dict(
        config='configs/toy/vpp_mask2former_vit_toy-ytvis21_closure_pkr0.4.py',
        label='PKR ~0.4 (0.6/0.42/0.294/0.206 at blocks 1/3/6/9)', toy='closure'),
    'closure_single': dict(
        config='configs/toy/vpp_mask2former_vit_toy-ytvis21_closure.py',
        label='single stage (0.4 at block 1 of 12)', toy='closure'),
}
#: Schedules run when --schedules is not given.
DEFAULT_SCHEDULES = ('paper', 'single')
#: Toy sets (``--toy``, the generator's ``--mode``): dense config, default
#: schedules and folders; a schedule belongs to the toy its ``toy`` names
#: (``'hard'`` when it names none).
TOYS = dict(
    hard=dict(dense=DENSE, schedules=DEFAULT_SCHEDULES, data_root='data/toy_ytvis21_hard/',
              work_dir='work_dirs/vpp_toy_benchmark',
              results_dir='projects/vpp/results/toy_hard'),
    closure=dict(dense='configs/toy/mask2former_vit_toy-ytvis21_closure.py',
                 schedules=('closure_paper', 'closure_pkr0.4'),
                 data_root='data/toy_ytvis21_closure/', work_dir='work_dirs/vpp_toy_closure',
                 results_dir='projects/vpp/results/toy_closure'))
#: Pixel-decoder contrasts (schedule a - schedule b, temporal selector both).
DECODER_CONTRASTS = (('paper_keepset', 'paper'), ('paper_reuse', 'paper'),
                     ('paper_imagedec', 'paper'), ('paper_keepset', 'paper_imagedec'))
SELECTORS = ('temporal', 'image', 'random')
LABELS = dict(dense='dense', temporal='VPP (temporal prior)',
              image='image-only', random='random', truncated='dense, no pruning')
#: Prefix of the diagnostic rows (``--truncate K``): the dense model with
#: only its first K ViT blocks, fine-tuned like every row. If it stays near
#: the dense AP, the toy's objects are recognised from early-block features
#: and the later blocks (where the staged selectors act) carry little of the
#: task.
TRUNCATED = 'trunc'
METRICS = ('AP', 'AP50', 'AP75')
#: Data of the benchmark (tools/misc/make_toy_ytvis.py --mode <toy>): 200
#: held-out videos.
DATA = dict(num_videos=400, num_frames=6, heldout_ratio=0.5, seed=0)
#: ``--cfg-options`` keys the script sets itself (refused: use its
#: arguments).
RESERVED_KEYS = ('train_cfg', 'randomness', 'load_from', 'resume', 'val_cfg', 'val_dataloader',
                 'val_evaluator', 'test_evaluator', 'default_hooks.checkpoint',
                 'train_dataloader.dataset.data_root', 'test_dataloader.dataset.data_root')
ENCODER_LAYERS = 'model.track_head.pixel_decoder.encoder.num_layers'


def schedule_toy(schedule: str) -> str:
    """The toy set a schedule of :data:`SCHEDULES` belongs to."""
    return SCHEDULES[schedule].get('toy', 'hard')


def schedule_label(schedule: str, depth: int) -> str:
    """Table / plot label of ``schedule`` (a :data:`SCHEDULES` key,
    ``'dense'`` or a truncation); ``depth``: ViT blocks of the dense
    model."""
    if schedule.startswith(TRUNCATED):
        return f'ViT cut to its first {schedule[len(TRUNCATED):]} of {depth} blocks'
    return 'dense' if schedule == 'dense' else SCHEDULES[schedule]['label']


def wraps_vit(cfg: Any) -> bool:
    """Whether ``cfg``'s ViT sits in ``model.backbone.backbone`` (VPP)."""
    return cfg.model.backbone.get('type') == 'VPPBackbone'


def move_key(cfg: Any, key: str) -> str:
    """A ``model.backbone.*`` key addresses the ViT: on a config that wraps
    the ViT it becomes ``model.backbone.backbone.*``."""
    if key.startswith('model.backbone.') and wraps_vit(cfg):
        return 'model.backbone.backbone.' + key[len('model.backbone.'):]
    return key


def model_options(cfg: Any, cfg_options: Optional[Mapping[str, Any]]) -> List[str]:
    """``--cfg-options`` for ``cfg`` as ``KEY=VALUE`` strings (keys moved
    by :func:`move_key`)."""
    return [format_option(move_key(cfg, k), v) for k, v in (cfg_options or {}).items()]


def check_model_options(configs: Mapping[str, Any],
                        cfg_options: Optional[Mapping[str, Any]]) -> Optional[str]:
    """Error text for ``--cfg-options`` the rows cannot take, else None.

    Args:
        configs (Mapping[str, Any]): Config path -> loaded config of every
            row.
        cfg_options (Mapping, optional): The parsed options.
    """
    cfg_options = cfg_options or {}
    error = check_cfg_options(
        cfg_options, {}, RESERVED_KEYS, 'use its arguments (iterations, seeds, data, '
        'checkpoints: --pretrain-iters, --finetune-iters, --seeds, --data-root)')
    value = cfg_options.get(ENCODER_LAYERS, 1)
    if error is None and not (isinstance(value, int) and value >= 1):
        # mmdet's DeformableDetrTransformerEncoder takes its embed_dims from
        # layers[0]: an encoder without layers does not build.
        error = (f'--cfg-options {ENCODER_LAYERS} must be an int >= 1 (mmdet\'s pixel decoder '
                 f'does not build without an encoder layer), got {value!r}')
    return error or check_cfg_options(cfg_options, configs,
                                      move=lambda path, key: move_key(configs[path], key))


def model_shape(dense_cfg: Any,
                cfg_options: Optional[Mapping[str, Any]]) -> Tuple[int, int, int]:
    """(ViT depth, embed dim, pixel-decoder encoder layers) of the dense
    config with ``cfg_options`` merged (into a copy).

    Raises:
        ValueError: The options made ``model.backbone.arch`` other than a
            dict.
    """
    cfg = copy.deepcopy(dense_cfg)
    if cfg_options:
        cfg.merge_from_dict(dict(cfg_options))
    arch = cfg.model.backbone.arch
    if not hasattr(arch, 'keys'):
        raise ValueError(f'run_toy_comparison: model.backbone.arch must stay a dict '
                         f'(embed_dims, num_layers, ...), got {arch!r}')
    return (arch['num_layers'], arch['embed_dims'],
            cfg.model.track_head.pixel_decoder.encoder.num_layers)


def prune_layers(cfg: Any) -> List[int]:
    """The ViT blocks where a VPP config prunes."""
    layers = cfg.model.backbone.prune_layer
    return list(layers) if isinstance(layers, (list, tuple)) else [layers]
