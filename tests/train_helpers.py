"""Options shared by the training tests (a plain module: `conftest` is ambiguous with tests/device)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TINY_RUN_OPTIONS = dict(backbone="mobilenet_v1", alpha=0.25, input_size=64, weights="none", epochs=1,
                        fine_tune_epochs=10, fine_tune_lr=2e-3, batch_size=16, augment="none", patience=10, seed=0)


def finetune_flags(options: dict) -> list:
    """``edgecnn finetune`` command-line flags for a dict of finetune() options."""
    flags = []
    for key, value in options.items():
        name = "--" + key.replace("_", "-")
        if isinstance(value, bool):  # --flip/--no-flip style switches, or plain flags like --mixed-precision
            if value or key in ("flip", "rotate", "zoom", "color"):
                flags.append(name if value else "--no-" + key.replace("_", "-"))
        elif value is not None:
            flags += [name, str(value)]
    return flags


def save_micro_base(path, name: str = "micro_base") -> Path:
    """Save a three-block conv feature extractor at 32 px (``--base``'s code path at a fraction of a
    backbone's cost) to ``path`` and return it."""
    from edgecnn.tf import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = inputs
    for i, filters in enumerate((8, 16, 32)):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
    keras.Model(inputs, x, name=name).save(path)
    return Path(path)
