"""A playground: change the prompt, the seed or a setting, click Generate, and see the pictures change.

Widgets (ipywidgets) for every argument a learner plays with, a Generate button with a progress bar, the
pictures as a captioned grid, a Save button (:func:`helpers.save_images`, metadata included) and a history strip
of the last pictures, each able to restore its settings. A bad value (an empty prompt, 0 steps, a size that is
not a multiple of 8) is a message in the playground, never a traceback, and the history stays as it was.

It uses only widgets and attributes that ipywidgets 7.7.1 (Colab's) and 8 (pinned here) share, and it runs
without a browser: the tests set ``.value`` on the widgets and call ``button.click()``.

Example:
    >>> from helpers import Playground, load_pipeline
    >>> playground = Playground(load_pipeline())
    >>> playground                       # in a notebook: shows the widgets  # doctest: +SKIP
    >>> playground.prompt.value = "a red fox in the snow"
    >>> playground.generate_button.click()   # what the Generate button does
    >>> playground.images[0].size
    (64, 64)
"""

from __future__ import annotations

import html
import io
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import ipywidgets as widgets

from .grid import grid_shape, labelled_grid
from .inputs import generation_settings, get_inputs
from .loading import load_kwargs, resolve_model
from .measure import measure
from .outputs import model_name, save_images
from .profiles import DEFAULT_PROMPT, current_profile
from .schedulers import set_scheduler, usable_schedulers

DEFAULT_FOLDER = Path("playground-pictures")  # where Save writes when no output_dir is given
GUIDANCE_SCALE = 7.5  # StableDiffusionPipeline's default
HISTORY_SIZE = 8
THUMBNAIL = 96  # pixels, the history strip's pictures
MAX_SEED = 2**31 - 1
SETTINGS = (
    "prompt",
    "negative_prompt",
    "seed",
    "num_inference_steps",
    "guidance_scale",
    "scheduler",
    "batch_size",
    "height",
    "width",
)
TINY_NOTICE = (
    "<b>Tiny model:</b> trained here on a toy world of coloured objects on simple backgrounds, it draws small (64 x "
    "64), rough pictures of that world, not art. The controls, seeds and timings are real; for real pictures, run on "
    "a GPU (in Colab: Runtime &gt; Change runtime type)."
)


@dataclass
class Creation:
    """One click of Generate: the settings, the pictures, the exact pipeline inputs and how long it took."""

    settings: dict
    images: list
    inputs: dict
    seconds: float
    model: str
    flagged: list = field(default_factory=list)  # indices the safety checker blanked
    grid_png: bytes = b""
    grid_width: int = 0

    @property
    def seeds(self) -> list[int]:
        return [self.settings["seed"] + i for i in range(len(self.images))]


def png_bytes(image) -> bytes:
    """A PIL image as PNG bytes, the form an ``ipywidgets.Image`` shows."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _labelled(description: str, widget_class, **kwargs):
    style = {"description_width": "initial"}
    return widget_class(description=description, style=style, **kwargs)


class Playground:
    """Widgets that drive ``pipe``: every setting, Generate, Save, and a history of the last pictures.

    Args:
        pipe: a Stable Diffusion pipeline (``load_pipeline()``). Its text progress bar is switched off: the
            playground shows its own.
        prompt, negative_prompt, seed, guidance_scale, batch_size: the starting values of the widgets.
        num_inference_steps, height, width: the starting values; None takes the active profile's.
        output_dir: where Save writes; None: ``playground-pictures/`` in the current folder.
        notebook: recorded in the metadata of saved pictures (e.g. ``"00_playground"``).
        history_size: how many past generations the history strip keeps.

    Attributes a test or a curious learner may use: the widgets (``prompt``, ``seed``, ``generate_button``, ...),
    ``history`` (newest first), ``current`` (the Creation shown), ``images`` (its pictures) and ``message``.
    """

    def __init__(
        self,
        pipe,
        *,
        prompt: str = DEFAULT_PROMPT,
        negative_prompt: str = "",
        seed: int = 0,
        num_inference_steps: int | None = None,
        guidance_scale: float = GUIDANCE_SCALE,
        batch_size: int = 1,
        height: int | None = None,
        width: int | None = None,
        output_dir: str | Path | None = None,
        notebook: str | None = None,
        history_size: int = HISTORY_SIZE,
    ):
        settings = generation_settings(num_inference_steps, height, width)
        get_inputs(batch_size=batch_size, seed=seed)  # a bad starting value is an error now, naming it
        self.pipe = pipe
        pipe.set_progress_bar_config(disable=True)
        self.output_dir = Path(output_dir) if output_dir is not None else DEFAULT_FOLDER
        self.notebook = notebook
        self.history_size = history_size
        self.history: list[Creation] = []
        self.current: Creation | None = None
        self.last_error: BaseException | None = None
        self.model = model_name(pipe)
        self.loaded_scheduler = pipe.scheduler  # every other scheduler is built from its config, as as_code() does
        max_batch = max(batch_size, current_profile().large_batch_size)

        self.prompt = _labelled("Prompt", widgets.Textarea, value=prompt, rows=2, layout={"width": "100%"})
        self.negative_prompt = _labelled(
            "Negative prompt", widgets.Text, value=negative_prompt, placeholder="e.g. blurry, low quality"
        )
        self.negative_prompt.layout.width = "100%"
        self.seed = _labelled("Seed", widgets.IntText, value=seed, layout={"width": "180px"})
        self.random_seed_button = widgets.Button(description="random seed", tooltip="pick a random seed")
        self.num_inference_steps = _labelled(
            "Steps", widgets.IntText, value=settings["num_inference_steps"], layout={"width": "130px"}
        )
        self.guidance_scale = _labelled(
            "Guidance scale", widgets.FloatSlider, value=guidance_scale, min=0.0, max=20.0, step=0.5
        )
        schedulers = usable_schedulers(pipe)
        self.scheduler = _labelled(
            "Scheduler", widgets.Dropdown, options=schedulers, value=type(pipe.scheduler).__name__
        )
        self.batch_size = _labelled("Batch size", widgets.IntSlider, value=batch_size, min=1, max=max_batch)
        self.width = _labelled("Width", widgets.IntText, value=settings["width"], layout={"width": "130px"})
        self.height = _labelled("Height", widgets.IntText, value=settings["height"], layout={"width": "130px"})
        self.generate_button = widgets.Button(description="Generate", button_style="primary")
        self.save_button = widgets.Button(description="Save", disabled=True, tooltip="save the pictures shown")
        self.progress = widgets.IntProgress(value=0, min=0, max=settings["num_inference_steps"], description="")
        self.status = widgets.HTML(value="")
        self.picture = widgets.Image(format="png", layout={"max_width": "100%"})
        self.caption = widgets.HTML(value="")
        self.history_strip = widgets.HBox([], layout={"flex_flow": "row wrap"})
        self.history_buttons: list = []

        self.random_seed_button.on_click(lambda _: self.random_seed())
        self.generate_button.on_click(lambda _: self.generate())
        self.save_button.on_click(lambda _: self.save())

        notice = [widgets.HTML(value=TINY_NOTICE)] if self.model.startswith("tiny:") else []
        self.widget = widgets.VBox(
            [
                *notice,
                self.prompt,
                self.negative_prompt,
                widgets.HBox([self.seed, self.random_seed_button, self.num_inference_steps, self.guidance_scale]),
                widgets.HBox([self.scheduler, self.batch_size, self.width, self.height]),
                widgets.HBox([self.generate_button, self.save_button, self.progress]),
                self.status,
                self.picture,
                self.caption,
                widgets.HTML(value="<b>History</b> (newest first; click a seed to restore its settings)"),
                self.history_strip,
            ]
        )

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    # What the widgets hold -------------------------------------------------------------------------------

    @property
    def images(self) -> list:
        """The pictures shown (empty before the first Generate)."""
        return [] if self.current is None else self.current.images

    @property
    def message(self) -> str:
        """The playground's last message as plain text (what it says under the buttons)."""
        return html.unescape(_strip_tags(self.status.value))

    def settings(self) -> dict:
        """The widgets' values, by the names ``get_inputs`` and the pipeline use."""
        values = {name: getattr(self, name).value for name in SETTINGS}
        values["negative_prompt"] = values["negative_prompt"] or None
        return values

    def restore(self, creation: Creation) -> None:
        """Put ``creation``'s settings back in the widgets and show its pictures again."""
        for name in SETTINGS:
            value = creation.settings[name]
            getattr(self, name).value = "" if value is None else value
        self._show(creation)
        self._say(f"Restored the settings of seed {creation.settings['seed']}: click Generate to make it again.")

    def random_seed(self) -> int:
        """Put a random seed in the seed box (the random button) and return it."""
        self.seed.value = random.randint(0, MAX_SEED - self.batch_size.value)
        return self.seed.value

    def as_code(self) -> str:
        """Plain diffusers code that loads the model and makes (and saves) what the widgets describe now.

        It uses nothing of this tutorial, so it runs as it is in a notebook or script of your own, and makes the
        same pictures as Generate: the same model, dtype and device, scheduler, seeds and settings.
        """
        s = self.settings()
        pipeline_class = type(self.pipe).__name__
        where, kind = resolve_model(self.model, current_profile())
        load = [_literal(where), f"dtype={self.pipe.dtype}"]
        variant = load_kwargs(kind, where, self.pipe.dtype).get("variant")
        load += [f"variant={_literal(variant)}"] if variant else []
        load += ["use_safetensors=True"]
        scheduler = s["scheduler"]
        swap = scheduler != type(self.loaded_scheduler).__name__
        imports = sorted({pipeline_class, scheduler} if swap else {pipeline_class})
        lines = [
            "import torch",
            f"from diffusers import {', '.join(imports)}",
            "",
            f"pipe = {pipeline_class}.from_pretrained(",
            f"    {', '.join(load)}",
            f").to({_literal(self.pipe.device.type)})",
        ]
        if swap:
            lines.append(f"pipe.scheduler = {scheduler}.from_config(pipe.scheduler.config)")
        n = s["batch_size"]
        cpu = "made on the CPU: the same starting noise on every device"
        if n == 1:
            prompt, negative = _literal(s["prompt"]), _literal(s["negative_prompt"])
            generator = f'torch.Generator("cpu").manual_seed({s["seed"]}),  # {cpu}'
            lines.append("image = pipe(")
        else:
            seeds = list(range(s["seed"], s["seed"] + n))
            prompt = f"[{_literal(s['prompt'])}] * len(seeds)"
            negative = f"[{_literal(s['negative_prompt'])}] * len(seeds)"
            generator = '[torch.Generator("cpu").manual_seed(seed) for seed in seeds],'
            lines += [f"seeds = {seeds}  # one generator per picture, {cpu}", "images = pipe("]
        lines.append(f"    prompt={prompt},")
        if s["negative_prompt"]:
            lines.append(f"    negative_prompt={negative},")
        lines += [
            f"    generator={generator}",
            f"    num_inference_steps={s['num_inference_steps']},",
            f"    guidance_scale={s['guidance_scale']},",
            f"    height={s['height']},",
            f"    width={s['width']},",
        ]
        if n == 1:
            lines += [").images[0]", f'image.save("seed-{s["seed"]}.png")']
        else:
            lines += [").images", "for seed, image in zip(seeds, images):", '    image.save(f"seed-{seed}.png")']
        return "\n".join(lines)

    # Generate and Save ----------------------------------------------------------------------------------

    def inputs(self, settings: dict) -> dict:
        """The pipeline's arguments for ``settings``; a ValueError names the setting that is wrong."""
        if not settings["prompt"].strip():
            raise ValueError('the prompt is empty: type what you want to see, e.g. "a red fox in the snow"')
        inputs = get_inputs(
            batch_size=settings["batch_size"],
            prompt=settings["prompt"],
            num_inference_steps=settings["num_inference_steps"],
            seed=settings["seed"],
            negative_prompt=settings["negative_prompt"],
            height=settings["height"],
            width=settings["width"],
        )
        return {**inputs, "guidance_scale": settings["guidance_scale"]}

    def generate(self) -> Creation | None:
        """Make the pictures the widgets describe (the Generate button); None, with a message, if it could not."""
        self.generate_button.disabled = True
        try:
            settings = self.settings()
            inputs = self.inputs(settings)
            if type(self.pipe.scheduler).__name__ != settings["scheduler"]:
                self.pipe.scheduler = self.loaded_scheduler
                if type(self.loaded_scheduler).__name__ != settings["scheduler"]:
                    set_scheduler(self.pipe, settings["scheduler"])
            self.progress.bar_style = ""
            self.progress.value = 0
            self._say(f"Generating {settings['batch_size']} picture(s) ...")
            with measure("generate", self.pipe.device) as timing:
                output = self.pipe(**inputs, callback_on_step_end=self._step)
        except Exception as err:  # noqa: BLE001 - every failure becomes a message in the widget, not a traceback
            self.last_error = err
            self.progress.bar_style, self.progress.value, self.progress.description = "danger", 0, ""
            self._say(f"Not generated: {_explain(err)} The history is unchanged.", error=True)
            return None
        finally:
            self.generate_button.disabled = False
        flagged = [i for i, hit in enumerate(getattr(output, "nsfw_content_detected", None) or []) if hit]
        creation = Creation(settings, list(output.images), inputs, timing.seconds, self.model, flagged)
        self.history = [creation, *self.history][: self.history_size]
        self._show(creation)
        self._refresh_history()
        self.progress.bar_style = "success"
        note = f" The safety checker blanked picture(s) {flagged}: change the prompt." if flagged else ""
        self._say(f"Made {len(creation.images)} picture(s) in {timing.seconds:.1f} s.{note}", error=bool(flagged))
        return creation

    def save(self) -> list[Path]:
        """Save the pictures shown, with their settings, into ``output_dir`` (the Save button); returns the files."""
        if self.current is None:
            self._say("Nothing to save yet: click Generate first.", error=True)
            return []
        creation = self.current
        try:
            paths = save_images(
                creation.images,
                self.output_dir,
                inputs=creation.inputs,
                scheduler=creation.settings["scheduler"],
                model=creation.model,
                **({"notebook": self.notebook} if self.notebook else {}),
            )
        except OSError as err:
            self.last_error = err
            self._say(f"Not saved: {_explain(err)} Choose another output_dir.", error=True)
            return []
        names = ", ".join(p.name for p in paths)
        self._say(f"Saved {len(paths)} picture(s) with their settings in {paths[0].parent.resolve()}: {names}")
        return paths

    # Drawing ------------------------------------------------------------------------------------------

    def _step(self, pipe, step: int, timestep, callback_kwargs: dict) -> dict:
        """diffusers' ``callback_on_step_end``: advance the progress bar after each denoising step."""
        self.progress.max = max(1, getattr(pipe, "num_timesteps", 0) or self.progress.max)
        self.progress.value = step + 1
        self.progress.description = f"{step + 1}/{self.progress.max}"
        return callback_kwargs

    def _show(self, creation: Creation) -> None:
        if not creation.grid_png:
            n = len(creation.images)
            rows, cols = grid_shape(n, max_cols=4)
            labels = [f"seed {seed}" for seed in creation.seeds]
            grid = labelled_grid(creation.images, labels, rows=rows, cols=cols)
            creation.grid_png, creation.grid_width = png_bytes(grid), grid.width
        self.current = creation
        self.picture.value = creation.grid_png
        self.picture.layout.width = f"{creation.grid_width}px"  # its own size (a column would stretch it)
        self.caption.value = caption(creation)
        self.save_button.disabled = False

    def _refresh_history(self) -> None:
        cells, self.history_buttons = [], []
        for creation in self.history:
            thumbnail = creation.images[0].copy()
            thumbnail.thumbnail((THUMBNAIL, THUMBNAIL))
            button = widgets.Button(
                description=f"seed {creation.settings['seed']}",
                tooltip=creation.settings["prompt"][:200],
                layout={"width": "auto", "min_width": f"{THUMBNAIL}px"},
            )
            button.on_click(lambda _, creation=creation: self.restore(creation))
            image = widgets.Image(value=png_bytes(thumbnail), format="png", width=THUMBNAIL, height=THUMBNAIL)
            cells.append(widgets.VBox([image, button]))
            self.history_buttons.append(button)
        self.history_strip.children = cells

    def _say(self, text: str, error: bool = False) -> None:
        escaped = html.escape(text)
        self.status.value = f'<span style="color:#b00020">{escaped}</span>' if error else escaped


def caption(creation: Creation) -> str:
    """The caption under the grid (HTML): the prompt, then every setting that made the pictures."""
    s = creation.settings
    parts = [
        f"seed {s['seed']}" + (f"-{s['seed'] + len(creation.images) - 1}" if len(creation.images) > 1 else ""),
        f"{s['num_inference_steps']} steps",
        f"guidance {s['guidance_scale']}",
        s["scheduler"],
        f"{s['width']}x{s['height']}",
        creation.model,
        f"{creation.seconds:.1f} s",
    ]
    negative = f"<br>not: {html.escape(s['negative_prompt'])}" if s["negative_prompt"] else ""
    return f"<b>{html.escape(s['prompt'])}</b>{negative}<br>{html.escape(' · '.join(parts))}"


def _literal(value) -> str:
    """``value`` as Python source; a string in double quotes, as ruff formats it (JSON's escapes are Python's)."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)


def _explain(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    if "out of memory" in text.lower():
        return (
            f"{type(err).__name__}: the GPU ran out of memory. Lower the batch size or the size, "
            "or see 05_memory for attention slicing and offloading."
        )
    if isinstance(err, ValueError | ImportError | OSError):
        return text if text.endswith(".") else text + "."
    return f"{type(err).__name__}: {text}" + ("" if text.endswith(".") else ".")


def _strip_tags(text: str) -> str:
    return re.sub(r"<[^>]+>", "", text)
