"""Print a config as it is after inheritance and ``--cfg-options``.

    python tools/misc/print_config.py CONFIG [--cfg-options k=v ...]
        [--save-path resolved.py]

The whole resolved config (every ``_base_`` merged, mmdet's and mmpretrain's
included) is printed as Python; ``--save-path`` also writes it (``.py``,
``.json`` or ``.yaml``), e.g. to diff two configs.
"""
import argparse

from mmengine.config import Config, DictAction

import mmsparse  # noqa: F401  (registers mmsparse and its 'mmsparse::' configs)
from mmsparse.registry import drop_mmsparse_scope

SUFFIXES = ('.py', '.json', '.yaml', '.yml')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Print the whole config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--save-path', default=None,
                        help='also write the resolved config (.py, .json, .yaml)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs')
    args = parser.parse_args(argv)
    if args.save_path is not None and not args.save_path.endswith(SUFFIXES):
        parser.error(f'--save-path must end in one of {SUFFIXES}, got {args.save_path!r}')
    return args


def main(argv=None) -> Config:
    args = parse_args(argv)
    cfg = drop_mmsparse_scope(Config.fromfile(args.config))
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    print(f'Config:\n{cfg.pretty_text}')
    if args.save_path is not None:
        cfg.dump(args.save_path)
        print(f'Saved to {args.save_path}')
    return cfg


if __name__ == '__main__':
    main()
