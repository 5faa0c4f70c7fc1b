"""Likely label errors: images whose given label a model trained without them finds unlikely.

Confident learning, by cleanlab's ``find_label_issues``: a logistic regression on the pretrained
base's pooled features (:mod:`edgecnn.audit.embeddings`) predicts every image from folds that did
not see it (scikit-learn's ``cross_val_predict``); cleanlab compares those out-of-fold
probabilities with the given labels, class by class thresholds included, and ranks the images whose
label disagrees most. Each is reported with the label it looks like and the probabilities behind it.
"""

from typing import List, Sequence

import numpy as np

MAX_FOLDS = 5


def out_of_fold_probs(features: np.ndarray, labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """N x K probabilities, each row from a logistic regression fitted on the other folds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folds = int(min(MAX_FOLDS, np.bincount(labels).min()))
    # C=0.01: strong regularisation for a few hundred images of 1000+ features. Measured on 120
    # hymenoptera photos with 4 planted flips (MobileNet v2 base): 8 flagged, the 4 flips among them;
    # C=0.1 flagged 10.
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return cross_val_predict(model, features, labels, cv=cv, method="predict_proba")


def find_label_errors(records: Sequence, features: np.ndarray, names: Sequence[str], seed: int = 0) -> List[dict]:
    """Items for the ``label_issues`` finding, most suspicious first (empty when the check cannot run:
    fewer than two images in some class)."""
    from cleanlab.filter import find_label_issues

    labels = np.asarray([r.label for r in records], dtype=np.int64)
    present = np.unique(labels)
    if len(present) < 2 or np.bincount(labels)[present].min() < 2:
        return []
    remap = {old: new for new, old in enumerate(present)}  # classes without usable images left out
    y = np.asarray([remap[v] for v in labels])
    probs = out_of_fold_probs(np.asarray(features, dtype=np.float32), y, seed)
    # n_jobs=1: cleanlab otherwise forks worker processes, and a fork of a process running gRPC threads
    # (finetune's label check after MultiWorker training) deadlocks; on audit-sized data it costs little.
    ranked = find_label_issues(labels=y, pred_probs=probs, return_indices_ranked_by="self_confidence", n_jobs=1)
    items = []
    for k in ranked.tolist():
        likely = int(np.argmax(probs[k]))
        items.append({"path": records[k].rel, "split": records[k].split, "label": names[present[y[k]]],
                      "likely_label": names[present[likely]], "p_label": round(float(probs[k, y[k]]), 3),
                      "p_likely": round(float(probs[k, likely]), 3),
                      "message": (f"{records[k].rel} is labelled '{names[present[y[k]]]}' but looks like "
                                  f"'{names[present[likely]]}' (probability {probs[k, likely]:.2f} against "
                                  f"{probs[k, y[k]]:.2f} for its label, from a model that did not see it)")})
    return items
