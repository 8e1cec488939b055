"""mmsparse.experiment: the harness of the comparison scripts in ``projects/``.

A driver is a plan: its arguments, its rows, how one row runs and how the
finished rows are summarised. The machinery they share lives here:

* :mod:`.store`: rows as JSON files written atomically (a row's file is its
  done-marker), cached stages;
* :mod:`.options`: the run options locked per work dir, the one
  ``--cfg-options`` path (parse, check against the configs, format back,
  a hook's settings by its type);
* :mod:`.runner`: a repository tool as a logged, timed subprocess, and the
  loop over the unfinished rows (in parallel when asked: threads through
  joblib, or forked processes for rows that train in the Python process);
* :mod:`.plan`: the options lock of a row store, the ``--dry-run`` listing
  of rows and stages;
* :mod:`.cost`: the time left, from a model fitted on the finished rows;
* :mod:`.report`: scores on draws of test items, markdown tables and the
  report files;
* :mod:`.tables`: rows grouped by seed, the paired contrast of two groups
  (bootstrap over items and t over seeds), seed means;
* :mod:`.items`: per-item records of a row (per-image correctness, video
  records) and the group scores the bootstrap recomputes from them;
* :mod:`.artifacts`: what a row's training leaves behind (weights digest,
  pruning state, logged scalars, checkpoints another machine lacks);
* :mod:`.plots`: intervals, per-seed dots and grouped columns of the
  report plots;
* :mod:`.stages`: a row's stages run through the tools and finished when
  their output exists (training, test metrics, sparse export), their
  seconds, and the finished stages of another work dir linked in;
* :mod:`.classify`: stages that train in the Python process (config
  overrides where a config has the key, epochs, a timed training, the
  validation curve);
* :mod:`.vis`: the stages of the toy video comparisons (a resumable
  training, a test that keeps the predictions, the held-out ground truth).
"""
from .cost import CostModel
from .options import (OptionsLock, check_cfg_options, describe_options,
                      format_option, hook_options, lookup_key, normalised,
                      options_diff)
from .report import cached_score, markdown_table, seed_mean, write_report
from .runner import ToolRunner, run_rows
from .store import RowStore, atomic_write_json, cached_json

__all__ = [
    'CostModel', 'OptionsLock', 'check_cfg_options', 'describe_options',
    'format_option', 'hook_options', 'lookup_key', 'normalised', 'options_diff', 'cached_score',
    'markdown_table', 'seed_mean', 'write_report', 'ToolRunner', 'run_rows',
    'RowStore', 'atomic_write_json', 'cached_json'
]
