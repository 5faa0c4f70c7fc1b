"""Where a trial's latency comes from: ``host``, ``ssh://user@board[:port]``, or a named profile.

* ``host``: measured on this machine with the board-side benchmark (:mod:`.host_target`);
* ``ssh://user@board[:port]``: measured on the board with ``edgecnn benchmark`` over SSH
  (:mod:`.ssh_target`);
* ``rpi4``, ``rpi5``, ``coral-usb``, ``coral-devboard``: an *estimate* from the model's MACs and
  the profile's fitted throughputs (:mod:`edgecnn.search.estimate`), labelled as such.

Every target returns ``{"latency_ms", "latency_kind": "measured"|"estimate", "target", ...}``
(see :mod:`.target_base`).
"""

from edgecnn.search import estimate as est
from edgecnn.search.host_target import HostTarget
from edgecnn.search.ssh_target import SSHTarget
from edgecnn.search.target_base import DEFAULT_STAT, STATS, Target, TargetError

# make_target's option names -> the SSHTarget arguments they set
_SSH_OPTIONS = {"remote_edgecnn": "remote_edgecnn", "ssh_key": "key", "ssh_options": "options",
                "ssh_timeout": "timeout", "runs": "runs", "threads": "threads"}
_HOST_OPTIONS = ("runs", "threads")


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


def make_target(spec: str, stat: str = DEFAULT_STAT, **options) -> Target:
    """``host``, ``ssh://user@board[:port]`` or a profile name -> a Target.

    ``options`` (``runs``, ``threads``, ``remote_edgecnn``, ``ssh_key``, ``ssh_options``,
    ``ssh_timeout``) left out or None take the target's own defaults; a target ignores the others.
    """
    spec = str(spec)
    if stat not in STATS:
        raise TargetError(f"--latency-stat '{stat}' is not one of: {', '.join(STATS)}.")
    given = {k: v for k, v in options.items() if v is not None and v != ""}
    if spec == "host":
        return HostTarget(stat=stat, **{k: given[k] for k in _HOST_OPTIONS if k in given})
    if spec.startswith("ssh:"):
        return SSHTarget(spec, stat=stat, **{arg: given[k] for k, arg in _SSH_OPTIONS.items() if k in given})
    if spec in est.profile_names():
        return ProfileTarget(spec)
    raise TargetError(f"unknown --target '{spec}'. Use host, ssh://user@board[:port], or a profile: "
                      f"{', '.join(est.profile_names())}.")


__all__ = ["HostTarget", "ProfileTarget", "SSHTarget", "Target", "TargetError", "make_target"]
