"""tools/analysis_tools/toy_patch_probe.py: patch labels, features and a tiny probe run."""
import json

import numpy as np
import pytest
from script_loader import load_script

PROBE = 'tools/analysis_tools/toy_patch_probe.py'


def test_patch_labels_are_majority_object():
    tool = load_script(PROBE)
    masks = np.zeros((2, 32, 48), bool)
    masks[0, :16, :9] = True  # 9 of 16 columns: majority
    masks[1, 16:, 16:24] = True  # exactly half: not foreground
    masks[1, 16:, 32:] = True
    labels = tool.patch_labels(masks, 16)
    assert labels.shape == (2, 3)
    assert labels.tolist() == [[True, False, False], [False, False, True]]


def test_patch_stats_and_neighbours():
    tool = load_script(PROBE)
    frame = np.zeros((32, 48, 3), np.uint8)
    frame[:16, 16:32] = (200, 100, 0)
    frame[16:, 32:, :] = np.indices((16, 16))[1][..., None] // 2 % 2 * 255  # stripes: edges
    stats = tool.patch_stats(frame, 16)
    assert stats.shape == (2, 3, 23)
    np.testing.assert_allclose(stats[0, 1, :3], (200, 100, 0))
    assert stats[0, 1, 3:6].max() == 0
    assert stats[0, 0, -1] == 1 / 16  # only its column next to the coloured patch
    assert stats[1, 0, -1] == 0 and stats[1, 0, -2] == 0  # flat, far from any edge
    assert stats[1, 2, -1] > 0.8 and stats[1, 2, 3] > 100  # edge density and std
    context = tool.with_neighbours(stats)
    assert context.shape == (2, 3, 9 * 23)
    np.testing.assert_array_equal(context[1, 1, 4 * 23:5 * 23], stats[1, 1])  # itself
    np.testing.assert_array_equal(context[1, 1, 2 * 23:3 * 23], stats[0, 2])  # up right
    assert not context[0, 0, :23].any()  # beyond the frame


def test_probe_runs_and_separates_easy_mode(tmp_path, capsys):
    tool = load_script(PROBE)
    out = tmp_path / 'probe.json'
    rows = tool.main(['--modes', 'easy', 'closure', '--probes', 'stats', '--num-videos', '8',
                      '--num-frames', '2', '--width', '160', '--height', '96',
                      '--out', str(out)])
    assert [(r['mode'], r['probe']) for r in rows] == [('easy', 'stats'), ('closure', 'stats')]
    assert json.loads(out.read_text()) == rows
    assert '| easy | stats |' in capsys.readouterr().out
    for r in rows:
        assert 0 <= r['auc'] <= 1 and r['train_patches'] + r['test_patches'] == 8 * 2 * 60
    assert rows[0]['auc'] > 0.9  # colour finds the easy mode's objects
    with pytest.raises(ValueError, match='toy_patch_probe: mode must be one of'):
        tool.probe_mode('medium', num_videos=2)
    with pytest.raises(ValueError, match='num_videos must be >= 2'):
        tool.probe_mode('easy', num_videos=1)
