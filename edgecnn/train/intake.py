"""Finetune reads its data once: one decode of each file gives the scan's verdict, the audit's hashes
and the pixels at the model's input size.

Before, a file was decoded three times (the dataset scan, the audit's scan, loading for the base pass);
reading the images cost more than a whole epoch of the plain Keras recipe. Now the audit's scan is the
only one (:func:`edgecnn.audit.pipeline.scan_records`, on a thread pool): its verdicts build the
Dataset, its records feed the audit's checks, and each usable file's pixels, resized as the board
resizes, go to a :class:`edgecnn.data.pixels.PixelCache`: in memory for this run's base pass, and on
disk for later runs, ``evaluate``, ``convert`` and the search's trials.
"""

from dataclasses import dataclass
from typing import Optional

from edgecnn.data.pixels import PixelCache

HASH_METHOD = "phash"  # the audit's default, so finetune's hook finds what `edgecnn audit` finds


@dataclass
class Intake:
    """What the single pass gives: the Dataset, the scanned records and the pixels at ``size``."""

    dataset: object
    discovery: object
    records: list
    pixels: PixelCache
    size: Optional[int]


def model_input_size(args: dict) -> Optional[int]:
    """The classifier's input size from the arguments alone, or None for ``--base`` (read from its file)."""
    from edgecnn.models.registry import get_backbone

    if args.get("base"):
        return None
    return int(args["input_size"] or get_backbone(args["backbone"]).input_size)


def read_data(args: dict, progress: bool) -> Intake:
    """Scan every file of ``args["data_dir"]`` once and split it (the checks come later, in :func:`audit`).

    Raises:
        DataError: as ``edgecnn.data.dataset.load_dataset`` does, for the folder, the classes or the split.
    """
    from edgecnn.audit.pipeline import scan_records, scan_results
    from edgecnn.data.dataset import assemble, check_fractions, check_two_classes
    from edgecnn.data.folders import discover
    from edgecnn.devices.preprocess import resize_rgb

    check_fractions(args["val_fraction"], args["test_fraction"])
    disc = discover(args["data_dir"])
    check_two_classes(disc)  # before a minute of scanning, as load_dataset does
    size = model_input_size(args)
    pixels = PixelCache(memory=True)

    def keep(record, rgb):
        pixels.put(record.sha256, (size, size), args["resize"], resize_rgb(rgb, (size, size), args["resize"]))

    records = scan_records(disc, HASH_METHOD, progress=progress, keep=keep if size else None)
    pixels.warn_problem()
    dataset = assemble(disc, scan_results(records), args["val_fraction"], args["test_fraction"], args["seed"])
    return Intake(dataset, disc, records, pixels, size)


def audit(intake: Intake, args: dict) -> dict:
    """The audit's checks (leakage, conflicts, duplicates, balance, shortcuts) on the records already scanned."""
    from edgecnn.audit import audit_dataset

    return audit_dataset(args["data_dir"], hash_method=HASH_METHOD, val_fraction=args["val_fraction"],
                         test_fraction=args["test_fraction"], seed=args["seed"],
                         scanned=(intake.discovery, intake.records))
