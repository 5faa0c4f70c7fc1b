"""The two criteria of convert and evaluate (--max-drop PP, --max-flips PCT) and the noise bound the
remedy ladder climbs by (issue 13: one image either way picked float16 or a worse rung)."""

import numpy as np

from edgecnn.converters.criteria import better_beyond_noise, drop_pp, failures, flip_pct, flipped


def onehot(indices, classes=3):
    return np.eye(classes)[np.asarray(indices)]


def test_drop_and_flips_are_two_figures():
    reference = onehot([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    model = onehot([1, 0, 2, 0, 1, 2, 0, 1, 2, 0])  # two flips that cancel out: no accuracy drop on these labels
    assert flip_pct(reference, model) == 20.0 and flipped(reference, model).sum() == 2
    assert drop_pp(0.9, 0.9) == 0.0 and drop_pp(0.9, 0.85) == 5.0
    assert failures("int8", 0.0, 20.0, max_drop=0.5) == []  # within --max-drop: flips are another option
    assert failures("int8", 0.0, 20.0, max_drop=0.5, max_flips=2.0) == [
        "int8: top-1 changed against the float model on 20.00% of images (limit --max-flips 2)"]
    assert failures("int8", 1.0, 0.0, max_drop=0.5) == ["int8: top-1 accuracy dropped 1.00 pp (limit --max-drop 0.5)"]


def test_ties_in_scores_are_not_flips():
    reference = np.array([[0.5, 0.5, 0.0]])
    assert flip_pct(reference, np.array([[0.5, 0.5, 0.0]])) == 0.0  # same tie rule on both sides


def test_a_later_rung_must_win_beyond_noise():
    n = 800
    old = np.zeros(n, bool)
    old[:6] = True                      # 6 flips
    one_better = old.copy()
    one_better[0] = False               # 5 flips: one image better
    swapped = old.copy()
    swapped[:3] = False
    swapped[10:12] = True               # 3 gained, 2 lost
    much_better = np.zeros(n, bool)     # 0 flips
    assert not better_beyond_noise(one_better, old)
    assert not better_beyond_noise(swapped, old)
    assert not better_beyond_noise(old, old)
    assert better_beyond_noise(much_better, old)  # 6 gained, 0 lost: beyond 1.645 sigma
    assert not better_beyond_noise(old, much_better)


def test_a_qat_that_lost_to_ptq_is_not_retrained_on_the_same_model(tmp_path):
    from edgecnn.compress.qat_memo import QatMemo

    model = tmp_path / "model.keras"
    model.write_bytes(b"weights v1")
    run = {"run_dir": str(tmp_path), "model_path": str(model)}
    assert QatMemo(run).skip_reason() is None
    QatMemo(run).record({"name": "qat", "accuracy": 0.81, "worse_than_ptq": True})
    assert "QAT already failed on this run" in QatMemo(run).skip_reason()
    model.write_bytes(b"weights v2")  # another model in the same RUN_DIR: try again
    assert QatMemo(run).skip_reason() is None
    QatMemo(run).record({"name": "qat", "accuracy": 0.9, "worse_than_ptq": False})
    assert QatMemo(run).skip_reason() is None
