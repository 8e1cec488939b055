"""Convert raw YouTube-VIS 2019/2021 annotations to CocoVID json (mmdet format).

Same output as mmdet's ``youtubevis2coco.py``, plus validation with clear errors,
a tolerant per-class report and an optional video-level held-out split of train
that keeps ground truth for local evaluation::

    python tools/dataset_converters/youtubevis2cocovid.py \
        -i data/youtube_vis_2021 -o data/youtube_vis_2021/annotations \
        --version 2021 --heldout-ratio 0.15 --seed 0

It imports only json, numpy and pycocotools, so it starts quickly:
``mmsparse/__init__.py`` registers every module (it imports torch, mmdet and
mmpretrain), so the converter loads its three modules from
``mmsparse/datasets/`` without running the package ``__init__``.
"""
import argparse
import importlib
import importlib.util
import os.path as osp
import sys

# ytvis_convert imports ytvis_checks, which imports ytvis_rle: load in that order.
_LIGHT_MODULES = ('ytvis_rle', 'ytvis_checks', 'ytvis_convert')


def import_converter():
    """Return ``mmsparse.datasets.ytvis_convert`` without importing torch/mmdet.

    If ``mmsparse`` is imported already (tests, a notebook), that module is
    returned. Otherwise the three json/numpy-only modules are loaded from their
    files under their package names, so relative imports between them resolve
    and a later ``import mmsparse`` reuses them.
    """
    if 'mmsparse' in sys.modules:
        return importlib.import_module('mmsparse.datasets.ytvis_convert')
    spec = importlib.util.find_spec('mmsparse')  # finds, does not run __init__
    if spec is None or not spec.submodule_search_locations:
        raise ImportError('youtubevis2cocovid: mmsparse is not installed; run `pip install '
                          '-e .` in the repository or add it to PYTHONPATH')
    folder = osp.join(list(spec.submodule_search_locations)[0], 'datasets')
    for name in _LIGHT_MODULES:
        full = f'mmsparse.datasets.{name}'
        if full in sys.modules:
            continue
        mod_spec = importlib.util.spec_from_file_location(full, osp.join(folder, f'{name}.py'))
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[full] = module
        try:
            mod_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[full]
            raise
    return sys.modules['mmsparse.datasets.ytvis_convert']


def parse_args(argv=None):
    versions = import_converter().YTVIS_VERSIONS
    parser = argparse.ArgumentParser(
        description='YouTube-VIS (raw) to CocoVID json, with an optional held-out split')
    parser.add_argument('-i', '--input', required=True,
                        help='dataset root in the official layout (train/JPEGImages, ...)')
    parser.add_argument('-o', '--output', default=None,
                        help='output directory (default: <input>/annotations)')
    parser.add_argument('--version', choices=versions, default='2021',
                        help='YouTube-VIS version (2019: <root>/train.json, '
                        '2021: <root>/train/instances.json)')
    parser.add_argument('--heldout-ratio', type=float, default=0.,
                        help='fraction of train videos held out with ground truth '
                        '(writes *_train_sub.json and *_heldout.json); 0 disables')
    parser.add_argument('--seed', type=int, default=0, help='seed of the held-out draw')
    parser.add_argument('--no-check-files', action='store_true',
                        help='skip the check that every frame file exists')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    convert_youtubevis = import_converter().convert_youtubevis
    try:
        written = convert_youtubevis(
            args.input, args.output, version=args.version, heldout_ratio=args.heldout_ratio,
            seed=args.seed, check_files=not args.no_check_files)
    except ValueError as e:
        sys.exit(f'error: {e}')
    for name, path in written.items():
        print(f'wrote {name}: {path}')


if __name__ == '__main__':
    main()
