"""Helpers shared by the Stable Diffusion tutorial notebooks.

The lesson helpers sit at the top of this folder, one job each; the notebooks import them from here so that
they read like a lesson:

- :mod:`helpers.profiles`: which machine we are on (gpu, mps, cpu, tiny) and what that implies.
- :mod:`helpers.loading`: ``load_pipeline``, the current diffusers way, for every profile.
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
- :mod:`helpers.speed`: speed settings (precision, attention, channels_last, fused QKV, torch.compile, TAESD)
  applied and undone by name, and measured.
- :mod:`helpers.flops`: FLOPs counted by PyTorch on the meta device, and the share of a GPU's peak.

One file beside them is run, not imported, by the notebooks' setup cell in Colab, before the packages are there:

- :mod:`helpers.colab_setup`: install what the lessons need beyond Colab's packages, restart the runtime if it must.

Behind them, in rooms named for their job:

- :mod:`helpers.standins`: random-weight stand-in models with the real architecture (the tiny test model, the
  SD1.5 replica, a TAESD stand-in).
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

from .charts import bar_chart, figure_to_image  # noqa: E402
from .compare import (  # noqa: E402
    NOT_FOR_SD15,
    Run,
    compare_schedulers,
    difference_image,
    image_difference,
    nearest_image,
    runs_table,
    time_batch_sizes,
    timed_run,
)
from .components import components_table, half_precision_check, pipeline_components  # noqa: E402
from .flops import peak_tflops, pipeline_flops, tflops_per_second, unet_step_flops, vae_decode_flops  # noqa: E402
from .grid import grid_shape, image_grid, labelled_grid  # noqa: E402
from .inputs import generation_settings, get_inputs  # noqa: E402
from .loading import ModelNotAvailableError, NoSafetensorsError, from_pretrained_call, load_pipeline  # noqa: E402
from .measure import Measurement, measure  # noqa: E402
from .memory import (  # noqa: E402
    MEMORY_SETTINGS,
    attention_processors,
    compare_memory_settings,
    memory_setting,
    memory_settings_table,
)
from .outputs import image_metadata, read_metadata, save_images  # noqa: E402
from .profiles import (  # noqa: E402
    PROFILES,
    Profile,
    activate_profile,
    available_profiles,
    check_gpu,
    current_profile,
    detect_device,
    resolve_profile,
)
from .progress import use_notebook_progress_bars  # noqa: E402
from .schedulers import list_schedulers, set_scheduler, usable_schedulers  # noqa: E402
from .speed import (  # noqa: E402
    SPEED_SETTINGS,
    compare_speed_settings,
    fast_path_settings,
    load_tiny_autoencoder,
    other_precisions,
    speed_chart,
    speed_settings,
    speed_settings_table,
    speed_table,
    speedups,
)
from .timing import Timing, time_pipeline  # noqa: E402

use_notebook_progress_bars()

__all__ = [
    "MEMORY_SETTINGS",
    "NOT_FOR_SD15",
    "PROFILES",
    "Playground",
    "Measurement",
    "ModelNotAvailableError",
    "NOT_FOR_SD15",
    "NoSafetensorsError",
    "PROFILES",
    "Profile",
    "Run",
    "SPEED_SETTINGS",
    "Timing",
    "activate_profile",
    "attention_processors",
    "available_profiles",
    "bar_chart",
    "check_gpu",
    "compare_memory_settings",
    "compare_schedulers",
    "compare_speed_settings",
    "components_table",
    "current_profile",
    "detect_device",
    "difference_image",
    "fast_path_settings",
    "figure_to_image",
    "from_pretrained_call",
    "generation_settings",
    "get_inputs",
    "grid_shape",
    "half_precision_check",
    "image_difference",
    "image_grid",
    "image_metadata",
    "labelled_grid",
    "list_schedulers",
    "load_pipeline",
    "load_tiny_autoencoder",
    "measure",
    "memory_setting",
    "memory_settings_table",
    "nearest_image",
    "peak_tflops",
    "pipeline_components",
    "other_precisions",
    "pipeline_flops",
    "read_metadata",
    "resolve_profile",
    "runs_table",
    "save_images",
    "set_scheduler",
    "speed_chart",
    "speed_settings",
    "speed_settings_table",
    "speed_table",
    "speedups",
    "tflops_per_second",
    "time_batch_sizes",
    "time_pipeline",
    "timed_run",
    "unet_step_flops",
    "usable_schedulers",
    "vae_decode_flops",
]


def __getattr__(name: str):
    """``from helpers import Playground`` imports ipywidgets (0.4 s here), so only the notebook that asks pays it."""
    if name == "Playground":
        from .playground import Playground

        return Playground
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")
