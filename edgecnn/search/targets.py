"""Where a trial's latency comes from: ``host``, ``ssh://user@board[:port]``, or a named profile.

* ``host``: measured on this machine with the board-side benchmark (``edgecnn.devices.benchmark``);
* ``ssh://user@board[:port]``: the model is copied to the board over ``ssh`` (``cat > file``: no
  SFTP subsystem needed), ``edgecnn benchmark MODEL --json`` runs there, and its JSON is read back
  (the ``ssh`` client in BatchMode: no password prompt ever; ConnectTimeout; a timeout per step);
* ``rpi4``, ``rpi5``, ``coral-usb``, ``coral-devboard``: an *estimate* from the model's MACs and
  the profile's fitted throughputs (:mod:`edgecnn.search.estimate`), labelled as such.

Every target returns ``{"latency_ms", "latency_kind": "measured"|"estimate", "target", ...}``;
``latency_ms`` is the statistic the search optimizes and budgets (p50 unless asked otherwise).
"""

import ipaddress
import json
import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import List, Optional
from urllib.parse import urlparse

from edgecnn.errors import EdgecnnError
from edgecnn.search import estimate as est

STATS = ("p50", "p90", "p99", "mean")
# What a board's user and host name may be. Anything else (a leading '-' above all) could be read
# by ssh as an option: `ssh://-oProxyCommand=CMD@x` would run CMD on this machine.
_SSH_USER = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,63}")
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"  # one part of a host name: never a leading '-'
_SSH_HOST = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?")


class TargetError(EdgecnnError):
    """A latency target is malformed or cannot be reached."""


def _stat_from_report(report: dict, stat: str) -> Optional[float]:
    """Find ``stat`` (p50...) in a benchmark JSON, whatever its nesting (``p50_ms``, ``latency_ms.p50``)."""
    results = report.get("results")
    if isinstance(results, list):  # edgecnn benchmark: one entry per backend x threads
        entries = [r for r in results if isinstance(r, dict) and not r.get("error")]
        if not entries and results:
            raise TargetError(f"the benchmark could not run the model: {results[0].get('error')}")
        for entry in entries:
            found = _stat_from_report(entry, stat)
            if found is not None:
                return found
    for key in (f"{stat}_ms", stat):
        if isinstance(report.get(key), (int, float)):
            return float(report[key])
    for key in ("latency_ms", "latency", "invoke_ms", "timings_ms", "stats"):
        sub = report.get(key)
        if isinstance(sub, dict):
            found = _stat_from_report(sub, stat)
            if found is not None:
                return found
    for sub in report.values():
        if isinstance(sub, dict):
            found = _stat_from_report(sub, stat)
            if found is not None:
                return found
    return None


def _local_benchmark(model_path, runs: int, warmup: int, threads: Optional[int]) -> dict:
    """Time ``invoke()`` with the LiteRT interpreter (used when devices.benchmark is not installed)."""
    import numpy as np

    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter
    interp = Interpreter(model_path=str(model_path), num_threads=threads)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    rng = np.random.default_rng(0)
    if np.dtype(inp["dtype"]).kind in "iu":
        info = np.iinfo(inp["dtype"])
        data = rng.integers(info.min, info.max + 1, size=inp["shape"], dtype=inp["dtype"])
    else:
        data = rng.uniform(0, 255, size=inp["shape"]).astype(inp["dtype"])
    interp.set_tensor(inp["index"], data)
    for _ in range(warmup):
        interp.invoke()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        interp.invoke()
        times.append((time.perf_counter() - t0) * 1000.0)
    times = np.asarray(times)
    return {"p50_ms": float(np.percentile(times, 50)), "p90_ms": float(np.percentile(times, 90)),
            "p99_ms": float(np.percentile(times, 99)), "mean_ms": float(times.mean()), "runs": runs,
            "backend": "litert (edgecnn.search fallback timer)"}


def host_benchmark(model_path, runs: int = 50, warmup: int = 5, threads: Optional[int] = None) -> dict:
    """Benchmark a .tflite here with the board-side library (``edgecnn.devices.benchmark``)."""
    try:
        from edgecnn.devices.benchmark import benchmark
    except ImportError:  # a partial install: time invoke() directly
        return _local_benchmark(model_path, runs, warmup, threads)
    return benchmark(str(model_path), backends=("auto",), threads=(int(threads or 1),), runs=runs, warmup=warmup,
                     isolate=False)


class Target:
    """Base class: ``measure(tflite_path)`` and ``estimate_counts(counts)`` (None when it cannot)."""

    name = "target"
    kind = "measured"

    def measure(self, model_path) -> dict:
        raise NotImplementedError

    def estimate_counts(self, counts: dict) -> Optional[float]:
        return None

    def describe(self) -> dict:
        return {"target": self.name, "latency_kind": self.kind}


class HostTarget(Target):
    def __init__(self, stat: str = "p50", runs: int = 50, threads: Optional[int] = None):
        self.name, self.stat, self.runs, self.threads = "host", stat, runs, threads

    def measure(self, model_path) -> dict:
        report = host_benchmark(model_path, runs=self.runs, threads=self.threads)
        value = _stat_from_report(report, self.stat)
        if value is None:
            raise TargetError(f"the host benchmark report has no '{self.stat}' figure: {sorted(report)}.")
        return {"latency_ms": value, "latency_kind": "measured", "target": "host", "stat": self.stat,
                "benchmark": report}


class ProfileTarget(Target):
    kind = "estimate"

    def __init__(self, name: str):
        self.profile = est.load_profile(name)
        self.name = self.profile["name"]

    def measure(self, model_path) -> dict:
        out = est.estimate(model_path, self.profile)
        out["target"] = self.name
        out["stat"] = "estimate"
        return out

    def estimate_counts(self, counts: dict) -> float:
        return est.estimate_ms(counts, self.profile)

    def describe(self) -> dict:
        return {"target": self.name, "latency_kind": "estimate", "fit_error": self.profile["fit_error"],
                "profile": self.profile.get("description", "")}


class SSHTarget(Target):
    """Measure on a real board over SSH with the OpenSSH ``ssh`` client.

    Args:
        url: ``ssh://user@host[:port]``.
        remote_edgecnn: the ``edgecnn`` command on the board (a venv's absolute path works).
        key: identity file (``-i``); otherwise the ssh agent / default keys.
        options: extra ``-o`` style options, e.g. ``["-o", "UserKnownHostsFile=/path"]``.
        timeout: seconds for each remote step (copy, benchmark).
    """

    def __init__(self, url: str, remote_edgecnn: str = "edgecnn", key: Optional[str] = None,
                 options: Optional[List[str]] = None, timeout: float = 120.0, stat: str = "p50",
                 connect_timeout: int = 10, runs: int = 50, threads: Optional[int] = None):
        parsed = urlparse(url)
        if parsed.scheme != "ssh" or not parsed.hostname or parsed.path not in ("", "/"):
            raise TargetError(f"--target '{url}' is not ssh://user@board[:port] (for example "
                              "ssh://pi@raspberrypi.local or ssh://pi@10.0.0.7:2222).")
        try:
            self.port = parsed.port or 22
        except ValueError:
            raise TargetError(f"--target '{url}' has an invalid port; use ssh://user@board:PORT.") from None
        self.url, self.host, self.user = url, _checked_host(url, parsed.hostname), _checked_user(url, parsed.username)
        self.name = url
        self.remote_edgecnn, self.key, self.options = remote_edgecnn, key, list(options or [])
        self.timeout, self.stat, self.connect_timeout, self.runs = timeout, stat, connect_timeout, runs
        self.threads = threads

    @property
    def dest(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def _common(self) -> List[str]:
        opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}",
                "-o", "StrictHostKeyChecking=accept-new", "-o", "LogLevel=ERROR"]
        if self.key:
            opts += ["-i", str(self.key)]
        return opts + self.options

    def _run(self, argv, what: str) -> str:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout)
        except FileNotFoundError:
            raise TargetError(f"the '{argv[0]}' client is not installed; install OpenSSH (apt-get install "
                              "openssh-client) to measure on a board over SSH.") from None
        except subprocess.TimeoutExpired:
            raise TargetError(f"board '{self.url}' did not finish {what} within {self.timeout:g} s. Check the "
                              "board's load and network, or raise --ssh-timeout.") from None
        if proc.returncode == 255:
            detail = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise TargetError(f"board '{self.url}' is unreachable over SSH ({detail}). Check that it is on and "
                              f"that `ssh -p {self.port} {self.dest}` logs in without a password prompt "
                              "(BatchMode), or pass --ssh-key.")
        if proc.returncode != 0:
            detail = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["no message"])[-1]
            raise TargetError(f"`{self.remote_edgecnn} benchmark` failed on board '{self.url}' (exit "
                              f"{proc.returncode}: {detail}). Install edgecnn on the board (pip install "
                              "'edgecnn[device]') or pass --remote-edgecnn with its path.")
        return proc.stdout

    def _argv(self, command: str) -> List[str]:
        # `--` ends ssh's options: the destination can never be read as one, whatever it holds
        return ["ssh", "-p", str(self.port)] + self._common() + ["--", self.dest, command]

    def ssh(self, command: str, what: str = "the command") -> str:
        return self._run(self._argv(command), what)

    def _copy(self, local: Path, remote: str):
        """Copy a file with ``ssh ... 'cat > remote'`` (works without the SFTP subsystem scp needs)."""
        argv = self._argv(f"cat > {shlex.quote(remote)}")
        try:
            with open(local, "rb") as fh:
                proc = subprocess.run(argv, stdin=fh, capture_output=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise TargetError(f"board '{self.url}' did not finish the copy within {self.timeout:g} s. Check the "
                              "network, or raise --ssh-timeout.") from None
        if proc.returncode != 0:
            detail = (proc.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
            if proc.returncode == 255:
                raise TargetError(f"board '{self.url}' is unreachable over SSH ({detail}). Check that it is on and "
                                  f"that `ssh -p {self.port} {self.dest}` logs in without a password prompt "
                                  "(BatchMode), or pass --ssh-key.")
            raise TargetError(f"cannot copy the model to '{remote}' on board '{self.url}' ({detail}).")

    def check(self):
        """Fail early, before any training, when the board cannot be reached."""
        self.ssh("true", "the connection test")

    def measure(self, model_path) -> dict:
        model_path = Path(model_path)
        remote_dir = self.ssh("mktemp -d /tmp/edgecnn-search.XXXXXX", "creating a folder").strip().splitlines()[-1]
        remote = f"{remote_dir}/{model_path.name}"
        try:
            self._copy(model_path, remote)
            threads = f" --threads {int(self.threads)}" if self.threads else ""
            out = self.ssh(f"{shlex.quote(self.remote_edgecnn)} benchmark {shlex.quote(remote)} --json{threads}",
                           "the benchmark")
        finally:
            try:
                self.ssh(f"rm -rf {shlex.quote(remote_dir)}", "cleaning up")
            except TargetError:
                pass
        report = None
        for line in reversed(out.strip().splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    report = json.loads(line)
                    break
                except ValueError:
                    continue
        if report is None:
            raise TargetError(f"`{self.remote_edgecnn} benchmark --json` on board '{self.url}' printed no JSON "
                              f"object (last output: {out.strip()[-200:]!r}).")
        value = _stat_from_report(report, self.stat)
        if value is None:
            raise TargetError(f"the benchmark report from '{self.url}' has no '{self.stat}' figure "
                              f"(keys: {sorted(report)}).")
        return {"latency_ms": value, "latency_kind": "measured", "target": self.url, "stat": self.stat,
                "benchmark": report}


def _checked_user(url: str, user: Optional[str]) -> Optional[str]:
    if user is None or _SSH_USER.fullmatch(user):
        return user
    raise TargetError(f"--target '{url}' has the user name {user!r}, which ssh could take for an option or "
                      "which is not a login name; use letters, digits, '.', '_' and '-' (not first), e.g. "
                      "ssh://pi@raspberrypi.local.")


def _checked_host(url: str, host: str) -> str:
    try:
        ipaddress.ip_address(host)  # 10.0.0.7, or ::1 (written ssh://pi@[::1])
        return host
    except ValueError:
        pass
    if _SSH_HOST.fullmatch(host):
        return host
    raise TargetError(f"--target '{url}' has the host {host!r}, which is not a host name or IP address (ssh "
                      "could take it for an option); use e.g. ssh://pi@raspberrypi.local or ssh://pi@10.0.0.7.")


def make_target(spec: str, **options) -> Target:
    """``host``, ``ssh://user@board[:port]`` or a profile name -> a Target."""
    spec = str(spec)
    stat = options.get("stat", "p50")
    if stat not in STATS:
        raise TargetError(f"--latency-stat '{stat}' is not one of: {', '.join(STATS)}.")
    if spec == "host":
        return HostTarget(stat=stat, runs=options.get("runs", 50), threads=options.get("threads"))
    if spec.startswith("ssh:"):
        return SSHTarget(spec, remote_edgecnn=options.get("remote_edgecnn") or "edgecnn", key=options.get("ssh_key"),
                         options=options.get("ssh_options"), timeout=options.get("ssh_timeout", 120.0), stat=stat,
                         runs=options.get("runs", 50), threads=options.get("threads"))
    if spec in est.profile_names():
        return ProfileTarget(spec)
    raise TargetError(f"unknown --target '{spec}'. Use host, ssh://user@board[:port], or a profile: "
                      f"{', '.join(est.profile_names())}.")
