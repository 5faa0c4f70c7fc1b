"""Published latencies the board profiles are fitted on (``python -m edgecnn.search.estimate fit``).

Each point names the model, the published time per inference in ms, and the page it comes from.
MACs are counted on the real Coral model in ../shared/models/coral when it is there
(``coral_file``), else on the same architecture built with keras.applications and converted to
TFLite (same layers and shapes, so the same MACs; a test checks that both counts agree on the Coral
models we have).
"""

QENG_RPI4 = "https://github.com/Qengineering/TensorFlow_Lite_Classification_RPi_64-bits"
AALLAN = "https://github.com/aallan/benchmarking-ml-on-the-edge"
PYCORAL_RP4B = ("https://github.com/google-coral/pycoral/blob/master/benchmarks/reference/"
                "inference_reference_rp4b.csv")
PYCORAL_AARCH64 = ("https://github.com/google-coral/pycoral/blob/master/benchmarks/reference/"
                   "inference_reference_aarch64.csv")
CORAL_BENCHMARKS = "https://coral.ai/docs/edgetpu/benchmarks/"

V1 = {"model": "mobilenet_v1_1.0_224_quant", "backbone": "mobilenet_v1", "alpha": 1.0, "size": 224,
      "coral_file": None}
V2 = {"model": "mobilenet_v2_1.0_224_quant", "backbone": "mobilenet_v2", "alpha": 1.0, "size": 224,
      "coral_file": "mobilenet_v2_1.0_224_quant.tflite"}

# Raspberry Pi 5 over Raspberry Pi 4, TensorFlow Lite, same MobileNet models (aallan's table:
# Pi 4 TFLite MobileNet v1 82.7 ms, v2 112.6 ms; Pi 5 TFLite v1 16.9 ms, v2 23.5 ms).
_PI5_OVER_PI4 = {"v1": 16.9 / 82.7, "v2": 23.5 / 112.6}

PROFILES = {
    "rpi4": {
        "description": "Raspberry Pi 4 Model B, CPU only (4x Cortex-A72), TensorFlow Lite int8 model, 64-bit OS.",
        "points": [
            dict(V1, ms=round(1000 / 38.5, 2), source=QENG_RPI4,
                 note="38.5 FPS, MobileNet V1 quant 224x224, RPi 4 @1950 MHz, 64-bit OS (C++)"),
            dict(V2, ms=round(1000 / 45.5, 2), source=QENG_RPI4,
                 note="45.5 FPS, MobileNet V2 quant 224x224, RPi 4 @1950 MHz, 64-bit OS (C++)"),
        ],
        "caveats": "Two published points for three coefficients: the fit is exact on them, so the stated "
                   "error says nothing about other architectures or much smaller inputs. The board was "
                   "overclocked (1950 MHz; stock is 1500-1800 MHz): expect stock boards to be slower. "
                   "Measure on the board with --target ssh://user@board for a real figure.",
    },
    "rpi5": {
        "description": "Raspberry Pi 5, CPU only (4x Cortex-A76), TensorFlow Lite int8 model.",
        "points": [
            dict(V1, ms=round(1000 / 38.5 * _PI5_OVER_PI4["v1"], 2), source=f"{QENG_RPI4} x {AALLAN}",
                 note="Pi 4 figure (38.5 FPS) scaled by the Pi 5 / Pi 4 TensorFlow Lite ratio 16.9/82.7 of "
                      "aallan's MobileNet v1 benchmark"),
            dict(V2, ms=round(1000 / 45.5 * _PI5_OVER_PI4["v2"], 2), source=f"{QENG_RPI4} x {AALLAN}",
                 note="Pi 4 figure (45.5 FPS) scaled by the Pi 5 / Pi 4 TensorFlow Lite ratio 23.5/112.6 of "
                      "aallan's MobileNet v2 benchmark"),
        ],
        "caveats": "Derived figures (a Pi 4 measurement times a published Pi 5/Pi 4 ratio), two points for "
                   "three coefficients: treat as a rough estimate and measure with --target ssh://.",
    },
    "coral-usb": {
        "description": "Coral USB Accelerator (Edge TPU) on a Raspberry Pi 4, USB 3.0; the int8 model "
                       "compiled with edgetpu_compiler and fully mapped to the Edge TPU.",
        "points": [
            dict(V1, model="mobilenet_v1_1.0_224_quant_edgetpu", ms=4.204, source=PYCORAL_RP4B,
                 note="pycoral reference benchmark, Raspberry Pi 4 + USB Accelerator"),
            dict(V2, model="mobilenet_v2_1.0_224_quant_edgetpu", ms=4.548, source=PYCORAL_RP4B,
                 note="pycoral reference benchmark, Raspberry Pi 4 + USB Accelerator"),
        ],
        "caveats": "On the Edge TPU latency follows data movement more than MACs (MobileNet v2 has fewer "
                   "MACs than v1 but is slower); ops the compiler leaves on the CPU are not modelled.",
    },
    "coral-devboard": {
        "description": "Coral Dev Board (Edge TPU, NXP i.MX 8M); the int8 model compiled with "
                       "edgetpu_compiler and fully mapped to the Edge TPU.",
        "points": [
            dict(V1, model="mobilenet_v1_1.0_224_quant_edgetpu", ms=2.22, source=PYCORAL_AARCH64,
                 note="pycoral reference benchmark, Dev Board"),
            dict(V2, model="mobilenet_v2_1.0_224_quant_edgetpu", ms=2.56, source=PYCORAL_AARCH64,
                 note="pycoral reference benchmark, Dev Board"),
            dict(V1, model="mobilenet_v1_1.0_224_quant_edgetpu", ms=2.4, source=CORAL_BENCHMARKS,
                 note="Coral 'Edge TPU performance benchmarks' table 1, Dev Board column"),
            dict(V2, model="mobilenet_v2_1.0_224_quant_edgetpu", ms=2.6, source=CORAL_BENCHMARKS,
                 note="Coral 'Edge TPU performance benchmarks' table 1, Dev Board column"),
        ],
        "caveats": "Two measurements of each of two models; ops the compiler leaves on the CPU are not "
                   "modelled.",
    },
}
