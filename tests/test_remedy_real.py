"""The remedy ladder on the real pretrained MobileNet v1 0.5/160 and hymenoptera (issue 13 points 4, 5):
`--max-drop 0.5` lost nothing yet ended on float16, because one image either way failed a flip bound
that was the same number. Now accuracy and flips are two criteria and the first rung within both stays."""

import json

import pytest
from click.testing import CliRunner

from edgecnn.cli import cli

pytestmark = [pytest.mark.shared, pytest.mark.slow]


def test_max_drop_keeps_the_bias_corrected_int8_and_prints_each_attempt(hymenoptera_run, tmp_path):
    from edgecnn.bundle.manifest import verify_bundle

    out = tmp_path / "bundle"
    res = CliRunner().invoke(cli, ["convert", str(hymenoptera_run), "--int8", "--out", str(out), "--max-drop", "0.5",
                                   "--eval-size", "0", "--golden", "0"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    manifest = verify_bundle(out)
    attempts = manifest["attempts"]
    first = attempts["tried"][0]
    assert first["name"] == "ptq_bias_corrected" and manifest["model"]["quantization"] == "int8"
    assert attempts["max_drop_pp"] == 0.5 and attempts["max_flips_pct"] == 2.0
    # 153 val, 153 mirrored val, 244 train and 244 mirrored train images count flips
    assert first["flip_images"] == 794
    chosen = next(a for a in attempts["tried"] if a["chosen"])
    assert chosen["within"] and chosen["quantization"] == "int8"
    assert f"{chosen['name']}: top-1 " in res.stderr and "limits --max-drop 0.5, --max-flips 2.0" in res.stderr
    # evaluate's gate reads the two criteria the same way
    res = CliRunner().invoke(cli, ["evaluate", str(out), "--against", str(hymenoptera_run), "--max-drop", "0.5",
                                   "--max-flips", "2", "--json"], catch_exceptions=False)
    gate = json.loads(res.stdout)["gate"]
    assert gate["max_flips_pct"] == 2 and (res.exit_code == 0) == gate["passed"]
