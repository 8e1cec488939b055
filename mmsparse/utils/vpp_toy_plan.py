"""The plan of the VPP toy comparison (``projects/vpp/run_toy_comparison.py``):
its toy sets, VPP schedules, selectors and labels, the schedules of the PKR
sweep (:func:`sweep_schedules`) and the ``--cfg-options`` of its rows.

The options address the model of every row: a ``model.backbone.*`` key
means the ViT, which the VPP configs wrap (``model.backbone.backbone``), so
there it is moved (:func:`move_key`); keys must exist in the configs, the
keys the script sets itself are refused (:func:`check_model_options`).
Functions take loaded configs (``mmengine.Config``); config paths are
relative to the repository root.
"""
import copy
import os.path as osp
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from mmsparse.experiment import check_cfg_options, format_option
from mmsparse.experiment.options import RUN_OPTIONS
from mmsparse.experiment.store import read_json
from mmsparse.vpp import check_schedule, schedule_pkr

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
    'paper_keepset_densefpn': dict(
        config='configs/toy/vpp_mask2former_vit_toy-ytvis21_hard_paper_keepset-decoder-densefpn.py',
        label='paper + keep-set decoder, dense FPN conv'),
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
#: schedules, the schedule the PKR sweep scales (``sweep_base``) and
#: folders; a schedule belongs to the toy its ``toy`` names (``'hard'`` when
#: it names none).
TOYS = dict(
    hard=dict(dense=DENSE, schedules=DEFAULT_SCHEDULES, sweep_base='paper',
              data_root='data/toy_ytvis21_hard/', work_dir='work_dirs/vpp_toy_benchmark',
              results_dir='projects/vpp/results/toy_hard'),
    closure=dict(dense='configs/toy/mask2former_vit_toy-ytvis21_closure.py',
                 schedules=('closure_paper', 'closure_pkr0.4'), sweep_base='closure_paper',
                 data_root='data/toy_ytvis21_closure/', work_dir='work_dirs/vpp_toy_closure',
                 results_dir='projects/vpp/results/toy_closure'))
#: Target PKRs (of a pruned frame) of ``--pkr-sweep`` given without values.
PKR_SWEEP = (0.8, 0.6, 0.5, 0.4, 0.3, 0.2)
#: Patches of the grid on which the sweep computes a schedule's PKR.
PKR_GRID = 10 ** 6
#: Infix of the sweep's schedule names: ``<base>_sweep<target PKR>``.
SWEEP = '_sweep'
#: How the sweep scales the base schedule (kept in the work dir's
#: ``run_options.json``: rows of one work dir come from one rule).
SWEEP_SCALING = 'keep_i = base_i ** g, g: schedule PKR = target (bisection), 4 decimals'
#: Row fields of a sweep row (beyond those of every row).
SWEEP_FIELDS = ('target_pkr', 'keep_ratio')
#: Pixel-decoder contrasts (schedule a - schedule b, temporal selector both).
DECODER_CONTRASTS = (('paper_keepset', 'paper'), ('paper_reuse', 'paper'),
                     ('paper_imagedec', 'paper'), ('paper_keepset', 'paper_imagedec'),
                     ('paper_keepset_densefpn', 'paper'),
                     ('paper_keepset', 'paper_keepset_densefpn'))
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
    """Table / plot label of ``schedule`` (a :data:`SCHEDULES` key, a sweep
    schedule, ``'dense'`` or a truncation); ``depth``: ViT blocks of the
    dense model."""
    if schedule.startswith(TRUNCATED):
        return f'ViT cut to its first {schedule[len(TRUNCATED):]} of {depth} blocks'
    sweep = parse_sweep(schedule)
    if sweep is not None:
        return f'{sweep[0]} scaled to PKR {sweep[1]:g}'
    return 'dense' if schedule == 'dense' else SCHEDULES[schedule]['label']


def sweep_name(base: str, target: float) -> str:
    """Schedule name of the sweep point ``target`` (a pruned frame's PKR)
    of the schedule ``base``."""
    return f'{base}{SWEEP}{target:g}'


def parse_sweep(schedule: str) -> Optional[Tuple[str, float]]:
    """``(base schedule, target PKR)`` of a sweep schedule name, else
    None."""
    base, sep, target = schedule.rpartition(SWEEP)
    if not sep or base not in SCHEDULES:
        return None
    try:
        return base, float(target)
    except ValueError:
        return None


def sweep_lock(toy: str) -> Dict[str, str]:
    """The sweep rule of ``toy`` as the work dir keeps it: base schedule
    and scaling."""
    return dict(base=TOYS[toy]['sweep_base'], scaling=SWEEP_SCALING)


def keeps_sweep_rule(work_dir: str) -> bool:
    """Whether the work dir's ``run_options.json`` keeps a sweep rule (a
    later run without ``--pkr-sweep`` keeps it there)."""
    path = osp.join(work_dir, RUN_OPTIONS)
    return osp.exists(path) and 'pkr_sweep' in read_json(path)


def scale_schedule(keep_ratios: Sequence[float], prune_layers: Sequence[int], depth: int,
                   target: float) -> Tuple[float, ...]:
    """The keep ratios ``base_i ** g`` of a schedule, ``g > 0`` such that
    the pruned frame's PKR (:func:`mmsparse.vpp.schedule_pkr`) is ``target``; rounded to
    4 decimals.

    The power keeps the stages' order, and a geometric schedule stays
    geometric: the paper's ``0.7 * 0.8 ** i`` (0.7 / 0.56 / 0.448 / 0.358)
    becomes ``0.7 ** g * (0.8 ** g) ** i``; ``g = 1`` is the schedule
    itself. The PKR falls from 1 (``g = 0``) towards the share of blocks
    before the first stage (``g`` large), so targets lie between.

    Raises:
        ValueError: ``target`` outside that range, or keep ratios that are
            no valid schedule after rounding (too small a target).
    """
    floor = prune_layers[0] / depth
    if not floor < target < 1 or max(keep_ratios) >= 1:
        raise ValueError(
            f'--pkr-sweep: target PKR {target:g} must be in ({floor:.3f}, 1) for the schedule '
            f'{list(keep_ratios)} at blocks {list(prune_layers)} of {depth} (blocks before the '
            'first stage run all patches)')

    def pkr(g: float) -> float:
        return schedule_pkr([k ** g for k in keep_ratios], prune_layers, depth, PKR_GRID)

    low, high = 0.0, 1.0
    while pkr(high) > target:
        low, high = high, 2 * high
    for _ in range(100):
        mid = (low + high) / 2
        if pkr(mid) > target:
            low = mid
        else:
            high = mid
    keep = tuple(round(k ** ((low + high) / 2), 4) for k in keep_ratios)
    try:
        check_schedule(keep, list(prune_layers), depth, owner='--pkr-sweep')
    except ValueError as err:
        raise ValueError(f'--pkr-sweep: target PKR {target:g} gives keep ratios {list(keep)}, '
                         f'no valid schedule ({err}); choose a larger target') from None
    return keep


def sweep_schedules(base: str, base_cfg: Any, targets: Sequence[float],
                    depth: int) -> List[Dict]:
    """The schedules of the PKR sweep: for each target the ``base``
    schedule (its config ``base_cfg``) scaled by :func:`scale_schedule`.

    Args:
        base (str): A :data:`SCHEDULES` key (the toy's ``sweep_base``).
        base_cfg (Any): Its loaded config (``prune_layer``,
            ``keep_ratio``).
        targets (Sequence[float]): Target PKRs of a pruned frame
            (duplicates dropped).
        depth (int): ViT blocks (of the dense config with the
            ``--cfg-options``).

    Returns:
        list[dict]: ``schedule`` (:func:`sweep_name`), ``config`` (the
        base's), ``target_pkr``, ``keep_ratio`` and ``prune_layer``.
    """
    layers = prune_layers(base_cfg)
    ratios = base_cfg.model.backbone.keep_ratio
    ratios = list(ratios) if isinstance(ratios, (list, tuple)) else [ratios]
    out: Dict[str, Dict] = {}
    for target in targets:
        out.setdefault(sweep_name(base, target), dict(
            schedule=sweep_name(base, target), config=SCHEDULES[base]['config'],
            target_pkr=float(target), prune_layer=layers,
            keep_ratio=list(scale_schedule(ratios, layers, depth, target))))
    return list(out.values())


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
