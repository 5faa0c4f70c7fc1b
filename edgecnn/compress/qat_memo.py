"""``RUN_DIR/.cache/remedy_qat.json``: the remedy ladder's QAT verdict on a run's model."""

from typing import Optional


class QatMemo:
    """``RUN_DIR/.cache/remedy_qat.json``: the ladder's QAT verdict on this run's model, so a second
    ``convert --max-drop`` does not spend minutes on a QAT that already lost to PTQ."""

    def __init__(self, run: dict):
        from pathlib import Path

        from edgecnn.bundle.manifest import sha256_file

        self.path = Path(run["run_dir"]) / ".cache" / "remedy_qat.json"
        self.model_sha256 = sha256_file(run["model_path"])

    def skip_reason(self) -> Optional[str]:
        import json

        try:
            memo = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        if memo.get("model_sha256") == self.model_sha256 and memo.get("worse_than_ptq"):
            return (f"QAT already failed on this run: int8 val accuracy {memo['accuracy']:.4f}, below plain PTQ "
                    f"(delete {self.path} to try again)")
        return None

    def record(self, attempt: Optional[dict]) -> None:
        from edgecnn.atomic import write_json

        if attempt is None or "accuracy" not in attempt:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.path, {"model_sha256": self.model_sha256, "accuracy": attempt["accuracy"],
                                          "worse_than_ptq": bool(attempt.get("worse_than_ptq"))})
        except OSError:  # a read-only RUN_DIR only loses the shortcut
            pass
