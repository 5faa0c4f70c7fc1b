"""finetune runs the data audit first: leakage warns, and --strict refuses it before any training."""

import shutil

from click.testing import CliRunner

from edgecnn.cli import cli


def test_strict_finetune_refuses_leaky_splits(tmp_path, demo_data):
    data = tmp_path / "data"
    for split in ("train", "val"):
        for cls in sorted(p.name for p in demo_data.iterdir() if p.is_dir()):
            files = sorted((demo_data / cls).iterdir())
            (data / split / cls).mkdir(parents=True)
            chosen = files[:12] if split == "train" else files[12:18]
            for f in chosen:
                shutil.copy(f, data / split / cls / f.name)
    first = sorted((data / "train").iterdir())[0]
    leaked = sorted(first.iterdir())[0]
    shutil.copy(leaked, data / "val" / first.name / ("leak_" + leaked.name))
    result = CliRunner().invoke(cli, ["finetune", str(data), "--out", str(tmp_path / "run"), "--weights", "none",
                                      "--strict", "--quiet"])
    assert result.exit_code == 2, result.output
    assert result.output == ("Error: the audit found 1 group(s) of identical or near-identical images are in more "
                             "than one split: val/test accuracy is inflated by images the model trained on. Fix the "
                             "data (see `edgecnn audit DATA_DIR --report`) or drop --strict.\n")
    assert not (tmp_path / "run" / "model.keras").exists()
