"""Per-class, per-group and gate figures on hand-built predictions whose answers are known."""

import numpy as np
import pytest

from edgecnn.evaluation.compare import compare_groups, compare_models, ensemble_probs, gate, read_groups_csv
from edgecnn.errors import DataError

LABELS = ["a", "b"]


def onehot(pred, conf=0.9):
    pred = np.asarray(pred)
    p = np.full((len(pred), 2), 1 - conf)
    p[np.arange(len(pred)), pred] = conf
    return p


@pytest.fixture
def case():
    # 10 images: 5 of class a, 5 of class b. Float gets all right; int8 misses two a's
    # (one day, one night image) and nothing else.
    y = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    float_p = onehot(y)
    int8_pred = y.copy()
    int8_pred[[0, 1]] = 1
    int8_p = onehot(int8_pred, conf=0.8)
    groups = ["day", "night", "day", "day", "night", "day", "day", "night", "night", None]
    return y, {"float": float_p, "int8": int8_p}, groups


def test_per_class_figures(case):
    y, probs, _ = case
    cmp = compare_models(y, probs, LABELS)
    assert cmp["models"]["float"]["accuracy"] == 1.0
    assert cmp["models"]["int8"]["accuracy"] == pytest.approx(0.8)
    vs = cmp["vs_reference"]["int8"]
    assert vs["accuracy_drop_pp"] == pytest.approx(20.0)
    assert vs["per_class"]["a"]["recall_drop_pp"] == pytest.approx(40.0)  # 5/5 -> 3/5
    assert vs["per_class"]["b"]["recall_drop_pp"] == pytest.approx(0.0)
    # b's precision: 5/5 -> 5/7
    assert vs["per_class"]["b"]["precision_drop_pp"] == pytest.approx(100 * (1 - 5 / 7), abs=1e-3)
    assert vs["agreement"] == pytest.approx(0.8)
    # Agreeing rows differ by 0.1 in both columns, disagreeing rows by 0.7 and 0.7.
    assert vs["mean_abs_prob_diff"] == pytest.approx((8 * 0.1 + 2 * 0.7) / 10)
    assert vs["hardest_classes"] == ["a"]
    assert cmp["models"]["int8"]["confusion_matrix"] == [[3, 2], [0, 5]]
    assert cmp["models"]["int8"]["balanced_accuracy"] == pytest.approx(0.8)


def test_per_group_figures(case):
    y, probs, groups = case
    per_group = compare_groups(y, probs, groups, LABELS)
    assert sorted(per_group) == ["day", "night"]
    assert per_group["day"]["n"] == 5 and per_group["night"]["n"] == 4  # the None image is in no group
    # day: images 0,2,3,5,6 -> one miss of 5; night: 1,4,7,8 -> one miss of 4
    assert per_group["day"]["vs_reference"]["int8"]["accuracy_drop_pp"] == pytest.approx(20.0)
    assert per_group["night"]["vs_reference"]["int8"]["accuracy_drop_pp"] == pytest.approx(25.0)


def test_gate(case):
    y, probs, groups = case
    cmp = compare_models(y, probs, LABELS)
    per_group = compare_groups(y, probs, groups, LABELS)
    assert gate(cmp, max_drop=25)["passed"]
    assert not gate(cmp, max_drop=10)["passed"]
    failed = gate(cmp, max_drop=25, max_class_drop=30, groups=per_group)
    assert not failed["passed"]
    assert failed["failures"] == ["int8: class 'a' recall dropped 40.00 pp (limit --max-class-drop 30)"]
    groups_fail = gate(cmp, max_class_drop=22, groups=per_group)["failures"]
    assert "int8: group 'night' accuracy dropped 25.00 pp (limit --max-class-drop 22)" in groups_fail
    assert not any("group 'day'" in f for f in groups_fail)
    unchecked = gate(cmp)
    assert unchecked["passed"] and not unchecked["checked"]


def test_ensemble_average():
    p1 = np.array([[0.9, 0.1], [0.2, 0.8]])
    p2 = np.array([[0.5, 0.5], [0.6, 0.4]])
    np.testing.assert_allclose(ensemble_probs([p1, p2]), [[0.7, 0.3], [0.4, 0.6]])


def test_groups_csv(tmp_path):
    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    files = [root / "a" / "1.jpg", root / "a" / "2.jpg", root / "a" / "3.jpg"]
    csv_path = tmp_path / "groups.csv"
    csv_path.write_text("file,group\na/1.jpg,day\n2.jpg,night\n")
    assert read_groups_csv(csv_path, files, root) == ["day", "night", None]
    bad = tmp_path / "bad.csv"
    bad.write_text("a/1.jpg\n")
    with pytest.raises(DataError, match="line 1: expected 'file,group'"):
        read_groups_csv(bad, files, root)
    none = tmp_path / "none.csv"
    none.write_text("x/9.jpg,day\n")
    with pytest.raises(DataError, match="none of its 1 rows names an evaluated image"):
        read_groups_csv(none, files, root)
    with pytest.raises(DataError, match="does not exist"):
        read_groups_csv(tmp_path / "missing.csv", files, root)
