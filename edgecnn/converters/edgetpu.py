"""Edge TPU: a static compatibility report, the ``edgetpu_compiler`` runner and its log parser.

The report reads the .tflite flatbuffer (``converters.flatbuffer``) and checks it against Coral's
op table (``converters.edgetpu_ops``): unsupported ops and the first one, where the compiler cuts
the graph (that op and everything after it run on the CPU); float ops; dynamic shapes; tensors
with more than 3 dimensions above 1; parameter bytes against the on-chip cache. A model that is
already compiled is recognised by its ``edgetpu-custom-op``.
"""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

from edgecnn.converters.edgetpu_ops import ON_CHIP_PARAMETER_BYTES, SOURCE, SUPPORTED
from edgecnn.converters.flatbuffer import EDGETPU_CUSTOM_OP, read_tflite
from edgecnn.errors import ConversionError

COMPILER = "edgetpu_compiler"
INSTALL_STEPS = """\
edgetpu_compiler is not on PATH, so the bundle has no model_edgetpu.tflite (the int8 model.tflite is kept).
To compile for the Edge TPU, install Coral's compiler on an x86-64 Debian or Ubuntu machine
(https://coral.ai/docs/edgetpu/compiler/):
  curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo gpg --dearmor -o /usr/share/keyrings/coral-edgetpu.gpg
  echo "deb [signed-by=/usr/share/keyrings/coral-edgetpu.gpg] https://packages.cloud.google.com/apt coral-edgetpu-stable main" | sudo tee /etc/apt/sources.list.d/coral-edgetpu.list
  sudo apt-get update
  sudo apt-get install edgetpu-compiler
  edgetpu_compiler --version
then run the same `edgecnn convert ... --edgetpu` again (or `edgetpu_compiler -s model.tflite` yourself)."""


def check_compatibility(source) -> dict:
    """Static Edge TPU report of a .tflite model (bytes or path); JSON-safe."""
    fb = read_tflite(source)
    compiled = [op for op in fb.ops if op.custom and op.name == EDGETPU_CUSTOM_OP]
    ops, unsupported, first_split = [], {}, None
    for op in fb.ops:
        tensors = fb.op_tensors(op)
        reasons = []
        if op.custom and op.name == EDGETPU_CUSTOM_OP:
            status = "compiled"
        else:
            if op.name not in SUPPORTED:
                reasons.append("not in the Edge TPU op table")
            floats = sorted({t.dtype for t in tensors if t.dtype.startswith("float")})
            if floats:
                reasons.append(f"computes in {'/'.join(floats)} (the Edge TPU runs 8-bit integer ops only)")
            if any(t.dynamic for t in tensors):
                reasons.append("has a dynamic tensor shape")
            if any(sum(1 for d in t.shape if d > 1) > 3 for t in tensors if not t.constant):
                reasons.append("has an activation tensor with more than 3 dimensions above 1")
            status = "supported" if not reasons else "cpu"
        entry = {"index": op.index, "op": op.name, "status": status, "reasons": reasons}
        if status == "supported" and SUPPORTED.get(op.name):
            entry["limitation"] = SUPPORTED[op.name]
        ops.append(entry)
        if status == "cpu":
            unsupported.setdefault(op.name, []).append(op.index)
            if first_split is None:
                first_split = entry
    params = sum(t.size * (1 if t.dtype in ("int8", "uint8") else 4 if t.dtype in ("int32", "float32") else 2)
                 for t in fb.tensors if t.constant)
    largest = max((t for t in fb.tensors if not t.constant), key=lambda t: t.size, default=None)
    if compiled:
        verdict = f"already compiled for the Edge TPU ({len(compiled)} {EDGETPU_CUSTOM_OP})"
    elif first_split is None:
        verdict = "every op is in the Edge TPU op table: the whole graph can map to the Edge TPU"
    else:
        before = first_split["index"]
        verdict = (f"the graph splits at op {before} ({first_split['op']}: {'; '.join(first_split['reasons'])}): "
                   f"ops 0-{before - 1} can map to the Edge TPU, op {before} and every later op run on the CPU"
                   if before else f"op 0 ({first_split['op']}) cannot map: the whole graph runs on the CPU")
    return {
        "op_table": SOURCE,
        "compiled": bool(compiled),
        "num_ops": len(fb.ops),
        "mappable_ops": first_split["index"] if first_split else len(fb.ops),
        "unsupported": {name: idx for name, idx in unsupported.items()},
        "first_split": first_split,
        "float_ops": [o["index"] for o in ops if any("computes in float" in r for r in o["reasons"])],
        "dynamic_shapes": any(t.dynamic for t in fb.tensors),
        "parameter_bytes": int(params),
        "parameters_fit_on_chip": params <= ON_CHIP_PARAMETER_BYTES,
        "largest_activation": {"name": largest.name, "shape": list(largest.shape)} if largest else None,
        "verdict": verdict,
        "ops": ops,
    }


_SIZE = re.compile(r"([\d.]+)\s*(B|KiB|MiB|GiB)")
_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}
_OP_ROW = re.compile(r"^([A-Za-z][\w-]*)\s+(\d+)\s+(\S.*?)\s*$")


def _bytes(text: str) -> Optional[int]:
    m = _SIZE.search(text)
    return int(round(float(m.group(1)) * _UNITS[m.group(2)])) if m else None


def parse_compiler_log(text: str) -> dict:
    """Parse ``edgetpu_compiler -s`` output and/or its ``*_edgetpu.log`` (Coral's documented format).

    Returns:
        ``version``, ``ops`` (rows ``{"op", "count", "status", "mapped"}``), ``ops_on_tpu``,
        ``ops_on_cpu`` (from the table), ``on_chip_bytes``, ``on_chip_remaining_bytes``,
        ``off_chip_bytes``, ``subgraphs``, ``total_ops``, ``compiled`` (success line seen).
    """
    out = {"version": None, "compiled": False, "ops": [], "on_chip_bytes": None, "on_chip_remaining_bytes": None,
           "off_chip_bytes": None, "subgraphs": None, "total_ops": None}
    in_table = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("Edge TPU Compiler version"):
            out["version"] = line.rsplit(" ", 1)[-1]
        elif line.startswith("Model compiled successfully") or line.startswith("Model successfully compiled"):
            out["compiled"] = True
        elif line.startswith("On-chip memory used for caching model parameters"):
            out["on_chip_bytes"] = _bytes(line.split(":", 1)[1])
        elif line.startswith("On-chip memory remaining for caching model parameters"):
            out["on_chip_remaining_bytes"] = _bytes(line.split(":", 1)[1])
        elif line.startswith("Off-chip memory used for streaming uncached model parameters"):
            out["off_chip_bytes"] = _bytes(line.split(":", 1)[1])
        elif line.startswith("Number of Edge TPU subgraphs"):
            out["subgraphs"] = int(line.split(":", 1)[1])
        elif line.startswith("Total number of operations"):
            out["total_ops"] = int(line.split(":", 1)[1])
        elif re.match(r"^Operator\s+Count\s+Status$", line):
            in_table = True
        elif in_table:
            m = _OP_ROW.match(line)
            if m:
                status = m.group(3)
                out["ops"].append({"op": m.group(1), "count": int(m.group(2)), "status": status,
                                   "mapped": status == "Mapped to Edge TPU"})
            else:
                in_table = False
    out["ops_on_tpu"] = sum(r["count"] for r in out["ops"] if r["mapped"])
    out["ops_on_cpu"] = sum(r["count"] for r in out["ops"] if not r["mapped"])
    return out


def run_compiler(content: bytes, timeout: float = 600.0, compiler: Optional[str] = None) -> tuple:
    """Compile ``content`` with ``edgetpu_compiler -s``; return ``(compiled bytes, parsed log)``."""
    compiler = compiler or shutil.which(COMPILER)
    if not compiler:
        raise ConversionError(INSTALL_STEPS)
    with tempfile.TemporaryDirectory(prefix="edgecnn-edgetpu-") as tmp:
        src = Path(tmp) / "model.tflite"
        src.write_bytes(content)
        out_dir = Path(tmp) / "out"
        out_dir.mkdir()
        cmd = [compiler, "-s", "-o", str(out_dir), str(src)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise ConversionError(f"edgetpu_compiler did not finish within {timeout:g} s; the int8 model is kept. "
                                  "Try a smaller model or a longer --timeout.") from None
        log_file = out_dir / "model_edgetpu.log"
        compiled_path = out_dir / "model_edgetpu.tflite"
        if proc.returncode != 0 or not compiled_path.is_file():
            tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            raise ConversionError(f"edgetpu_compiler failed (exit {proc.returncode}): {tail or 'no output'}")
        parsed = parse_compiler_log(proc.stdout)
        if not parsed["ops"] and log_file.is_file():  # older compilers print the table only to the .log
            parsed.update({k: v for k, v in parse_compiler_log(log_file.read_text(errors="replace")).items()
                           if k in ("ops", "ops_on_tpu", "ops_on_cpu")})
        parsed["command"] = " ".join(os.path.basename(c) if i == 0 else c for i, c in enumerate(cmd[:-2])) + \
            " model.tflite"
        return compiled_path.read_bytes(), parsed


def edgetpu_step(content: bytes, require: bool = False, timeout: float = 600.0) -> tuple:
    """The ``--edgetpu`` step of convert: report, then compile when the compiler is present.

    Returns:
        ``(section for the manifest, compiled bytes or None, notes for the user)``.
    """
    report = check_compatibility(content)
    section = {"report": {k: v for k, v in report.items() if k != "ops"}, "compiler": None}
    compiler = shutil.which(COMPILER)
    if not compiler:
        if require:
            raise ConversionError("--require-edgetpu: " + INSTALL_STEPS)
        return section, None, [INSTALL_STEPS]
    compiled, log = run_compiler(content, timeout, compiler)
    if not read_tflite(compiled).ops or not any(op.name == EDGETPU_CUSTOM_OP for op in read_tflite(compiled).ops):
        log["warning"] = "the compiled model contains no edgetpu-custom-op: nothing runs on the Edge TPU"
        if require:
            raise ConversionError("--require-edgetpu: edgetpu_compiler mapped no op to the Edge TPU "
                                  f"({report['verdict']}).")
    section["compiler"] = log
    return section, compiled, []


def format_report(section: dict) -> str:
    """A few human lines about the Edge TPU section of a bundle."""
    rep = section["report"]
    lines = [f"Edge TPU check ({rep['num_ops']} ops): {rep['verdict']}"]
    if rep["unsupported"]:
        lines.append("  on the CPU: " + ", ".join(f"{k} x{len(v)}" for k, v in rep["unsupported"].items()))
    log = section.get("compiler")
    if log:
        mib = (log["on_chip_bytes"] or 0) / 2 ** 20
        lines.append(f"  edgetpu_compiler {log['version']}: {log['ops_on_tpu']} ops on the Edge TPU, "
                     f"{log['ops_on_cpu']} on the CPU; on-chip {mib:.2f} MiB, off-chip "
                     f"{(log['off_chip_bytes'] or 0) / 2 ** 20:.2f} MiB")
    return "\n".join(lines)
