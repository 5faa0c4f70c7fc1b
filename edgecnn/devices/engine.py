"""A loaded bundle: frames in, decisions out (preprocess -> interpreter -> decision policy).

The primary model runs on the Edge TPU when asked and available, else on the CPU model with a
``degraded`` event; the TPU is retried every ``tpu_retry_s``. Fallback models run only for
uncertain frames. Everything the preprocessing needs comes from the manifest and the .tflite.
"""

import time
from pathlib import Path

import numpy as np

from edgecnn.bundle.manifest import MANIFEST, load_manifest, model_path, sha256_file, verify_bundle
from edgecnn.bundle.model import DEFAULT_RESIZE, ModelSpec
from edgecnn.devices import backends
from edgecnn.devices.decision import Policy
from edgecnn.devices.edgetpu import Watchdog, load_edgetpu_delegate
from edgecnn.devices.preprocess import bgr_to_rgb, resize_rgb, to_input_tensor
from edgecnn.errors import DeviceError


class Runner:
    """One interpreter plus the preprocessing its model needs (pycoral adapters underneath)."""

    def __init__(self, model_file, backend="auto", threads=None, delegates=None, resize=DEFAULT_RESIZE,
                 mean=0.0, std=1.0, device="cpu"):
        self.model_file = Path(model_file)
        self.interpreter, self.backend = backends.make_interpreter(model_file, backend, threads, delegates)
        self.size = backends.input_size(self.interpreter)
        self.dtype, self.scale, self.zero_point = backends.input_quantization(self.interpreter)
        self.resize, self.mean, self.std, self.device = resize, float(mean), float(std), device

    def tensor(self, rgb: np.ndarray) -> np.ndarray:
        """The 1×H×W×3 input tensor for an RGB image of any size."""
        return to_input_tensor(rgb, self.size, self.resize, self.dtype, self.scale, self.zero_point,
                               self.mean, self.std)

    def frame_tensor(self, frame: np.ndarray, swap: bool = True) -> np.ndarray:
        """The input tensor for a captured frame: resized first, then BGR -> RGB on the small image
        when ``swap``. Equal to ``tensor(bgr_to_rgb(frame))`` (OpenCV resizes each channel on its
        own) and cheaper: the channel swap of a full camera frame costs more than the resize."""
        resized = resize_rgb(frame, self.size, self.resize)
        return self.tensor(bgr_to_rgb(resized) if swap else resized)

    def invoke(self, tensor: np.ndarray) -> np.ndarray:
        """Run one input tensor; return the dequantized output scores."""
        backends.set_input(self.interpreter, tensor)
        self.interpreter.invoke()
        return backends.output_scores(self.interpreter)


class Engine:
    """A verified bundle ready to classify frames.

    Args:
        bundle_dir: the bundle folder (its sha256 are checked unless ``verify=False``).
        backend, threads: interpreter backend name and thread count.
        edgetpu: run ``model_edgetpu.tflite`` with the libedgetpu delegate when possible.
        on_event: callable receiving status events (``degraded``, ``recovered``, ``hung``).
        invoke_limit_s: an invoke longer than this is reported as hung.
        probe: load each model once in a child process first (a corrupt file cannot crash us).
    """

    def __init__(self, bundle_dir, backend="auto", threads=None, edgetpu=False, on_event=None,
                 tpu_retry_s=60.0, invoke_limit_s=5.0, verify=True, probe=True):
        self.bundle_dir = Path(bundle_dir)
        self.manifest = verify_bundle(bundle_dir) if verify else load_manifest(bundle_dir)
        self.sha256 = sha256_file(self.bundle_dir / MANIFEST)  # which bundle runs (deploy's health check)
        self.backend_name, self.threads, self.probe = backend, threads, probe
        self.on_event = on_event or (lambda event: None)
        self.model = self.manifest["model"]
        self.spec = ModelSpec.from_manifest(self.manifest)
        self._swap = self.spec.color_order == "RGB"  # captured frames are BGR
        self.labels = list(self.manifest["labels"])
        self.policy = Policy(self.manifest["decision"], self.labels)
        self.want_tpu = bool(edgetpu)
        self.tpu_retry_s = float(tpu_retry_s)
        self.degraded = None
        self._last_tpu_try = 0.0
        self.primary = self._load_primary()
        self.fallbacks = [self._runner(self.bundle_dir / name) for name in self.spec.fallbacks]
        for runner in [self.primary] + self.fallbacks:
            outputs = int(backends.output_details(runner.interpreter, "shape")[-1])
            if outputs != len(self.labels):
                raise DeviceError(f"model '{runner.model_file}' has {outputs} outputs but the bundle has "
                                  f"{len(self.labels)} labels. Rebuild the bundle.")
        self.watchdog = Watchdog(invoke_limit_s, self._on_hang)

    def _runner(self, path, delegates=None, device="cpu"):
        if self.probe and not delegates:
            backends.probe_model(path, self.backend_name, self.threads)
        return Runner(path, self.backend_name, self.threads, delegates, self.spec.resize, self.spec.input_mean,
                      self.spec.input_std, device)

    def _try_tpu(self):
        self._last_tpu_try = time.monotonic()
        tpu_file = model_path(self.bundle_dir, self.manifest, edgetpu=True)
        if tpu_file is None:
            raise DeviceError(f"bundle '{self.bundle_dir}' has no Edge TPU model; compile one with "
                              "`edgecnn convert --edgetpu`")
        delegate = load_edgetpu_delegate(backends.get_backend(self.backend_name))
        return self._runner(tpu_file, [delegate], device="edgetpu")

    def _load_primary(self):
        if self.want_tpu:
            try:
                return self._try_tpu()
            except Exception as exc:  # any delegate or load failure: CPU model, degraded
                self._degrade(str(exc))
        return self._runner(model_path(self.bundle_dir, self.manifest))

    def _degrade(self, reason):
        self.degraded = reason
        self.on_event({"event": "degraded", "reason": reason, "using": "cpu",
                       "retry_s": self.tpu_retry_s})

    def _on_hang(self, seconds):
        self.on_event({"event": "hung", "seconds": round(seconds, 3), "device": self.primary.device,
                       "model": self.primary.model_file.name})

    def maybe_retry_tpu(self, now=None):
        """When degraded, retry the TPU every ``tpu_retry_s``; swap back to it when it loads."""
        now = time.monotonic() if now is None else now
        if not (self.want_tpu and self.degraded and now - self._last_tpu_try >= self.tpu_retry_s):
            return False
        try:
            self.primary = self._try_tpu()
        except Exception as exc:
            self.degraded = str(exc)
            return False
        self.degraded = None
        self.on_event({"event": "recovered", "using": "edgetpu"})
        return True

    def rgb(self, frame_bgr: np.ndarray) -> np.ndarray:
        """A captured (BGR, OpenCV) frame in the order the model wants."""
        return bgr_to_rgb(frame_bgr) if self._swap else frame_bgr

    def prepare(self, frame_bgr: np.ndarray):
        """The primary's input tensor for a frame, tagged with its runner (capture threads call this
        ahead of :meth:`classify`, so preprocessing overlaps the previous invoke)."""
        return self.primary, self.primary.frame_tensor(frame_bgr, self._swap)

    def classify(self, frame_bgr: np.ndarray, prepared=None):
        """Decide one captured (BGR) frame: ``(label, score, FrameDecision)``.

        ``prepared`` is :meth:`prepare`'s result; it is used only if made for the current primary
        (after a hot-swap or a return to the TPU it is recomputed).
        """
        runner, tensor = prepared if prepared is not None else (None, None)
        if runner is not self.primary:
            tensor = self.primary.frame_tensor(frame_bgr, self._swap)
        with self.watchdog.guard():
            scores = self.primary.invoke(tensor)
        return self.policy(scores, [lambda r=r: r.invoke(r.frame_tensor(frame_bgr, self._swap))
                                    for r in self.fallbacks])

    def decided_by(self, decision) -> str:
        """The ``model`` of a frame event: the primary's file, or ``ensemble:primary+fallback...``."""
        if decision.model == "primary":
            return self.primary.model_file.name
        return "ensemble:" + "+".join([self.primary.model_file.name] + [r.model_file.name for r in self.fallbacks])

    def describe(self) -> dict:
        return {"bundle": str(self.bundle_dir), "sha256": self.sha256, "backend": self.primary.backend.name,
                "device": self.primary.device, "model": self.primary.model_file.name,
                "fallbacks": [r.model_file.name for r in self.fallbacks], "degraded": self.degraded,
                "labels": len(self.labels), "input_size": list(self.primary.size)}

    def close(self):
        """Stop the watchdog and drop the interpreters (a hot swap must not keep the old models alive)."""
        self.watchdog.close()
        for runner in [self.primary] + self.fallbacks:
            runner.interpreter = None


def release_memory():
    """Give freed heap back to the system after an engine is dropped (glibc only; a no-op elsewhere).

    An interpreter frees its tensors and packed weights when it goes, but glibc keeps the freed
    pages in its arenas (one per thread: engines are built in the watcher thread and dropped in the
    run loop). Measured with Coral's 0.5 MB MobileNet v1 (tests/device/test_field_hotswap.py): RSS
    78.6 -> 111.4 MB over 100 hot swaps without ``malloc_trim``, 76.5 -> 78.8 MB with it.
    """
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # musl, macOS: nothing to trim
        return
    trim(0)
