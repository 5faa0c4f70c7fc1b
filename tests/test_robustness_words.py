"""The robustness summary's words: pp for differences, no corruption both robust and more fragile,
and FGSM figures that say how far accuracy falls (issue 12)."""

from edgecnn.evaluation.robustness_run import fgsm_summary
from edgecnn.evaluation.robustness import summarize


def report(clean, acc, severities=(1, 3, 5)):
    """A robustness_report-shaped dict from clean accuracies and acc[model][kind][severity]."""
    models = list(clean)
    kinds = list(acc[models[0]])
    fragile, quant = {}, []
    for m in models:
        rows = []
        for k in kinds:
            worst = min(severities, key=lambda s: acc[m][k][s])
            mean = sum(acc[m][k].values()) / len(severities)
            rows.append({"kind": k, "mean_drop": round(clean[m] - mean, 4), "worst_severity": worst,
                         "worst_accuracy": acc[m][k][worst], "worst_drop": round(clean[m] - acc[m][k][worst], 4)})
        fragile[m] = sorted(rows, key=lambda r: -r["mean_drop"])
    for m in models[1:]:
        quant += [{"model": m, "kind": k, "severity": s, "delta": round(acc[m][k][s] - acc[models[0]][k][s], 4)}
                  for k in kinds for s in severities]
    mean_corrupted = {m: sum(v for k in kinds for v in acc[m][k].values()) / (len(kinds) * len(severities))
                      for m in models}
    return {"models": models, "kinds": kinds, "severities": list(severities), "clean": clean, "accuracy": acc,
            "mean_corrupted": mean_corrupted, "fragile_to": fragile, "quantization": quant}


def test_differences_are_pp_and_a_uniform_gap_is_not_fragility():
    # int8 is 8.3 pp worse on clean images and exactly as much worse under each corruption.
    flat = {"brightness": {1: 0.70, 3: 0.70, 5: 0.69}, "contrast": {1: 0.60, 3: 0.40, 5: 0.25}}
    shifted = {k: {s: round(v - 0.083, 3) for s, v in row.items()} for k, row in flat.items()}
    text = summarize(report({"float": 0.708, "int8": 0.625}, {"float": flat, "int8": shifted}))
    assert "'int8' vs 'float': clean -8.3 pp; under every corruption the gap stays within 3 pp" in text
    assert "-8.3%" not in text
    assert "(contrast: 29 pp lower on average, 25% at severity 5)" in text
    assert "Robust to: brightness." in text.splitlines()[1]


def test_a_corruption_is_never_both_robust_and_more_fragile():
    # int8 holds its own clean accuracy under brightness (robust on its own terms) while the float
    # model gains there: the gap to float widens by 6 pp, so brightness must not be called robust.
    fl = {"brightness": {1: 0.80, 3: 0.80, 5: 0.80}, "jpeg": {1: 0.70, 3: 0.70, 5: 0.70}}
    q = {"brightness": {1: 0.66, 3: 0.66, 5: 0.66}, "jpeg": {1: 0.66, 3: 0.66, 5: 0.66}}
    text = summarize(report({"float": 0.70, "int8": 0.66}, {"float": fl, "int8": q}))
    int8_line, vs_line = text.splitlines()[1], text.splitlines()[2]
    assert vs_line == ("'int8' vs 'float': clean -4.0 pp; quantization made it more fragile (the gap widens by 3 pp "
                       "or more) under brightness (-14.0 pp at severity 1).")
    assert int8_line.endswith("Robust to: jpeg.")


def test_fgsm_says_how_far_accuracy_falls():
    text = fgsm_summary({"epsilons": [0.0, 2.0, 8.0],
                         "accuracy": {"float": [0.708, 0.083, 0.042], "int8": [0.625, 0.104, 0.042]}})
    first, second = text.splitlines()
    assert first == ("FGSM on 'float': 70.8% clean; 8.3% at epsilon 2/255, 4.2% at epsilon 8/255 "
                     "(below half its clean accuracy from epsilon 2).")
    assert "halves" not in text
    assert second == ("The same adversarial images on 'int8': 4.2% at epsilon 8/255 (+1.0 pp vs 'float' on "
                      "average): the attacks transfer about as well.")
