"""Helpers shared by the Stable Diffusion tutorial notebooks.

The lesson helpers sit at the top of this folder, one job each; the notebooks import them from here so that
they read like a lesson:

- :mod:`helpers.profiles`: which machine we are on (gpu, mps, cpu, tiny) and what that implies.
- :mod:`helpers.loading`: ``load_pipeline``, the current diffusers way, for every profile; ``pretrained_source``,
  what to hand ``from_pretrained`` yourself.
- :mod:`helpers.loop`: the denoising loop written out (``denoise_by_hand``), latents decoded, the picture emerging.
- :mod:`helpers.inputs`: ``get_inputs``, one seeded generator per image.
- :mod:`helpers.grid`: ``image_grid`` and ``labelled_grid``.
- :mod:`helpers.schedulers`: compatible schedulers, switching by name.
- :mod:`helpers.measure`: wall time and peak memory.
- :mod:`helpers.outputs`: saving images with their metadata.
- :mod:`helpers.components`: what is inside a pipeline, and what half precision changes.
- :mod:`helpers.compare`: the same prompt and seed through several settings, timed and tabulated.
- :mod:`helpers.memory`: memory settings applied and undone by name, and measured.
- :mod:`helpers.charts`: bar charts of measurements that show as pictures, and figures as images.
- :mod:`helpers.progress`: progress bars that a saved notebook shows finished (installed on import).
- :mod:`helpers.playground`: ``Playground``, widgets to change the settings and generate with a click.
- :mod:`helpers.timing`: warm-up, repeated timing, medians and spread, the denoising loop's it/s.
- :mod:`helpers.settings`: the one mechanism behind the memory and speed settings: a registry of named settings,
  each applied, undone and able to say why it cannot run here.
- :mod:`helpers.speed`: speed settings (precision, attention, channels_last, fused QKV, torch.compile, regional
  compilation, TAESD) applied and undone by name, and measured.
- :mod:`helpers.hardware`: what this machine can do fast (half formats, bfloat16, a compiler for torch.compile).
- :mod:`helpers.speed_report`: speed-ups, tables and charts of speed measurements.
- :mod:`helpers.flops`: FLOPs counted by PyTorch on the meta device, and the share of a GPU's peak.
- :mod:`helpers.lora`: which LoRA lesson 06 loads on each profile (a Hub id, or the stand-ins' folders).
- :mod:`helpers.checks`: the one range check of counts, sizes and scales; its messages name a value that works.
- :mod:`helpers.tables`: Markdown tables from rows, for the lessons' tables and the tools' reports.
- :mod:`helpers.training`: the pieces that train a tiny text-to-image model from nothing, as diffusers' training
  examples do (lesson 08, and ``make train-tiny`` for the shipped tiny models).

One file beside them is run, not imported, by the notebooks' setup cell in Colab, before the packages are there:

- :mod:`helpers.colab_setup`: install what the lessons need beyond Colab's packages, restart the runtime if it must.

Behind them, in rooms named for their job:

- :mod:`helpers.standins`: stand-in models: the tiny models trained here on a world of captioned pictures (and
  that world), a random-weight replica of SD1.5's architecture, a TAESD stand-in.
- :mod:`tools`: what the ``make`` targets run (run-all, download, the browser check); no lesson imports it.
"""

from __future__ import annotations

import logging
import warnings


class _DropTorchvisionFallbackNotice(logging.Filter):
    """transformers 5 warns on import that image processors fall back to PIL when torchvision is missing.

    The notebooks use no image processor (the tiny model has none; the safety checker's works the same either
    way), so the notice only confuses learners and breaks notebook output comparisons.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "requires torchvision (not installed)" not in record.getMessage()


logging.getLogger("transformers.utils.import_utils").addFilter(_DropTorchvisionFallbackNotice())

# diffusers 0.42's schedulers hand torch tensors to numpy the pre-NumPy-2 way; numpy warns on every call.
# The results are right; the warnings are about diffusers' code, not the learner's, so they are hidden.
for _message in ("__array__ implementation doesn't accept a copy keyword", "__array_wrap__ must accept context"):
    warnings.filterwarnings("ignore", message=_message, category=DeprecationWarning)

from .charts import bar_chart  # noqa: E402
from .compare import (  # noqa: E402
    NOT_FOR_SD15,
    compare_schedulers,
    difference_image,
    image_difference,
    nearest_image,
    runs_table,
    time_batch_sizes,
)
from .components import components_table, half_precision_check, pipeline_components  # noqa: E402
from .flops import peak_tflops, pipeline_flops  # noqa: E402
from .grid import grid_shape, image_grid, labelled_grid  # noqa: E402
from .inputs import generation_settings, get_inputs  # noqa: E402
from .loading import from_pretrained_call, load_pipeline, load_tiny_autoencoder, pretrained_source  # noqa: E402
from .loop import KeepLatents, decode_latents, denoise_by_hand, emerging_strip  # noqa: E402
from .lora import style_lora  # noqa: E402
from .measure import measure  # noqa: E402
from .memory import MEMORY_SETTINGS, attention_processors, compare_memory_settings, memory_settings_table  # noqa: E402
from .outputs import image_saver, read_metadata, save_images  # noqa: E402
from .profiles import activate_profile, check_gpu  # noqa: E402
from .progress import use_notebook_progress_bars  # noqa: E402
from .schedulers import list_schedulers, schedule_chart, set_scheduler  # noqa: E402
from .speed import (  # noqa: E402
    SPEED_SETTINGS,
    compare_speed_settings,
    drop_fused_projections,
    fast_path_settings,
    other_precisions,
    speed_settings_table,
    uncompile,
)
from .speed_report import speed_chart, speed_table  # noqa: E402

use_notebook_progress_bars()

# Exactly the names the notebooks import, sorted (tests/lessons/test_exports.py checks it, as diffusers'
# utils/check_inits.py does). Tools and tests import anything else from its module: ``from helpers.loading import
# ModelNotAvailableError``.
__all__ = [
    "KeepLatents",
    "MEMORY_SETTINGS",
    "NOT_FOR_SD15",
    "Playground",
    "SPEED_SETTINGS",
    "activate_profile",
    "attention_processors",
    "bar_chart",
    "check_gpu",
    "compare_memory_settings",
    "compare_schedulers",
    "compare_speed_settings",
    "components_table",
    "decode_latents",
    "denoise_by_hand",
    "difference_image",
    "drop_fused_projections",
    "emerging_strip",
    "fast_path_settings",
    "from_pretrained_call",
    "generation_settings",
    "get_inputs",
    "grid_shape",
    "half_precision_check",
    "image_difference",
    "image_grid",
    "image_saver",
    "labelled_grid",
    "list_schedulers",
    "load_pipeline",
    "load_tiny_autoencoder",
    "measure",
    "memory_settings_table",
    "nearest_image",
    "other_precisions",
    "peak_tflops",
    "pipeline_components",
    "pipeline_flops",
    "pretrained_source",
    "read_metadata",
    "runs_table",
    "save_images",
    "schedule_chart",
    "set_scheduler",
    "speed_chart",
    "speed_settings_table",
    "speed_table",
    "style_lora",
    "time_batch_sizes",
    "uncompile",
]


def __getattr__(name: str):
    """``from helpers import Playground`` imports ipywidgets (0.4 s here), so only the notebook that asks pays it."""
    if name == "Playground":
        from .playground import Playground

        return Playground
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")
