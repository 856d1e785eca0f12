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
- :mod:`helpers.charts`: bar charts of measurements, and figures as images.

One file beside them is run, not imported, by the notebooks' setup cell in Colab, before the packages are there:

- :mod:`helpers.colab_setup`: install what the lessons need beyond Colab's packages, restart the runtime if it must.

Behind them, in rooms named for their job:

- :mod:`helpers.standins`: random-weight stand-in models with the real architecture (the tiny test model).
- :mod:`helpers.tools`: what the ``make`` targets run (run-all, download, the browser check); no lesson imports it.
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
    image_difference,
    nearest_image,
    runs_table,
    time_batch_sizes,
    timed_run,
)
from .components import components_table, half_precision_check, pipeline_components  # noqa: E402
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
from .schedulers import list_schedulers, set_scheduler, usable_schedulers  # noqa: E402

__all__ = [
    "MEMORY_SETTINGS",
    "NOT_FOR_SD15",
    "PROFILES",
    "Measurement",
    "ModelNotAvailableError",
    "NoSafetensorsError",
    "Profile",
    "Run",
    "activate_profile",
    "attention_processors",
    "available_profiles",
    "bar_chart",
    "check_gpu",
    "compare_memory_settings",
    "compare_schedulers",
    "components_table",
    "current_profile",
    "detect_device",
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
    "measure",
    "memory_setting",
    "memory_settings_table",
    "nearest_image",
    "pipeline_components",
    "read_metadata",
    "resolve_profile",
    "runs_table",
    "save_images",
    "set_scheduler",
    "time_batch_sizes",
    "timed_run",
    "usable_schedulers",
]
