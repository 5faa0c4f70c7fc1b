"""Hot swap in the field: 100 swaps of a real MobileNet bundle and the process's memory stays flat.

Measured with Coral's 0.5 MB MobileNet v1: before the fix RSS went 78.6 -> 91.0 -> 111.4 MB after 1,
10 and 100 swaps (the old interpreter was freed, but glibc kept its pages); after it 76.5 -> 78.0 ->
78.8 MB. The swaps run in a child
process, so the RSS measured is the run loop's own.
"""

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.device, pytest.mark.slow]

SWAPS = 100

CHILD = r"""
import json, shutil, sys, threading, time
sys.path.insert(0, sys.argv[3])
from board_helpers import ColourCamera
from edgecnn.devices.app import run

def rss_mb():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmRSS"))

def Camera():  # a live fake camera: no camera on CI
    return ColourCamera(seeds=7)

bundle, swaps = sys.argv[1], int(sys.argv[2])
seen = {"bundle_swapped": 0, "started": 0, "bundle_rejected": 0}
cond = threading.Condition()

class Sink:
    def write(self, line):
        kind = json.loads(line)["event"]
        with cond:
            if kind in seen:
                seen[kind] += 1
                cond.notify_all()
    def flush(self):
        pass

def wait(kind, count, timeout=120):
    with cond:
        assert cond.wait_for(lambda: seen[kind] >= count or seen["bundle_rejected"], timeout), (kind, count, seen)
        assert not seen["bundle_rejected"], seen

stop = threading.Event()
thread = threading.Thread(target=run, args=(bundle, Camera), kwargs=dict(
    mode="live", watch_bundle=True, watch_interval_s=0.05, stop_event=stop, install_signals=False,
    event_stream=Sink()))
thread.start()
wait("started", 1)
figures = {}
for i in range(1, swaps + 1):
    manifest_path = bundle + "/edgecnn.json"
    with open(manifest_path) as fh:
        manifest = json.load(fh)
    manifest["deployed"] = i  # a new bundle version: the manifest itself is not in its own sha256 list
    with open(manifest_path, "w") as fh:
        json.dump(manifest, fh)
    wait("bundle_swapped", i)
    if i in (1, 10, 25, 50, 75, 100):
        figures[i] = round(rss_mb(), 1)
stop.set()
thread.join(30)
print(json.dumps(figures))
"""


# Five minutes in the tflite-runtime venv: the soak runs once per `make test`, in .venv, where it
# failed before the fix (78.6 -> 111.4 MB); under tflite-runtime 2.14 it measured 67.3 -> 69.7 MB.
@pytest.mark.skipif(os.environ.get("EDGECNN_BOARD_VENV") == "1",
                    reason="the 100-swap soak runs once, in .venv (five more minutes here)")
def test_rss_stays_flat_over_100_hot_swaps(coral_tpu_bundle, tmp_path):
    import shutil

    from board_helpers import ASSETS

    bundle = tmp_path / "bundle"
    shutil.copytree(coral_tpu_bundle, bundle)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(bundle), str(SWAPS), str(ASSETS.parent)],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = {int(k): v for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}
    print("RSS MB after N swaps:", figures)
    # bounded growth: the first swaps warm caches up; from swap 10 to 100 it stays within 8 MB
    # (before the fix: +20.4 MB from swap 10 to 100, +4.0 from 50 to 100)
    assert figures[SWAPS] - figures[10] < 8, figures
    assert figures[SWAPS] - figures[50] < 4, figures
