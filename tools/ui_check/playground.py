"""The playground script of the UI check: what a learner does in ``00_playground``, step by step.

:func:`drive_playground` types a prompt, clicks Generate (timed), Save (the file and its metadata checked on disk),
tries a bad value, and restores settings from the history; the helpers around it wait for the kernel each time.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .bounds import PICTURE, STEP, CheckFailed
from .page import NotebookPage

if TYPE_CHECKING:
    from .cli import Result

PLAYGROUND = "00_playground"
PROMPT = "a red fox in the snow, ui check"
MESSAGES_JS = """() => [...document.querySelectorAll('.widget-html')].map(h => h.innerText)
    .filter(text => /^(Made|Not |Saved|Nothing|Restored|Generating)/.test(text))"""


def type_into(nb: NotebookPage, field, value) -> None:
    """Type ``value`` into a widget, leave it (Tab), and wait until the kernel has applied it."""
    nb.page.echoes.values.clear()
    field.fill(str(value), timeout=nb.deadline.ms(STEP))
    field.press("Tab", timeout=nb.deadline.ms(STEP))
    end = time.monotonic() + nb.deadline.left(STEP)
    while not nb.page.echoes.seen(value):
        if time.monotonic() > end:
            raise CheckFailed(f"the kernel did not take {value!r} from the browser within {STEP} s")
        nb.page.wait_for_timeout(50)


def widget_with_label(page, kind: str, label: str):
    return page.locator(f".widget-{kind}", has=page.locator("label", has_text=re.compile(f"^{label}$"))).locator(
        "input, textarea"
    )


def click_button(nb: NotebookPage, text: str) -> None:
    nb.page.locator(".widget-button", has_text=re.compile(f"^{text}$")).first.click(timeout=nb.deadline.ms(STEP))


def wait_for_message(nb: NotebookPage, start: str, bound: float = STEP) -> str:
    """Wait until the playground's message starts with ``start``; return it (or say what it says instead)."""
    status = nb.page.locator(".widget-html", has_text=re.compile(f"^{re.escape(start)}")).first
    try:
        status.wait_for(timeout=nb.deadline.ms(bound))
    except Exception as err:
        said = nb.page.evaluate(MESSAGES_JS)
        raise CheckFailed(f"the playground did not say {start!r} within {bound} s; it says {said}") from err
    return status.inner_text()


def drive_playground(nb: NotebookPage, out: Path, result: Result) -> None:
    """Type a prompt, Generate (timed), Save (checked on disk), a bad value, then restore from the history."""
    from helpers import read_metadata

    page, deadline = nb.page, nb.deadline
    prompt = widget_with_label(page, "textarea", "Prompt")
    type_into(nb, prompt, PROMPT)
    picture = page.locator("img.widget-image").first
    cpu_before = nb.lab.kernel_cpu_seconds(nb.relative)
    start = time.perf_counter()
    click_button(nb, "Generate")
    page.wait_for_function(
        """([prompt]) => [...document.querySelectorAll('.widget-html')].some(h => h.innerText.startsWith(prompt))
            && [...document.querySelectorAll('img.widget-image')].some(i => i.complete && i.naturalWidth > 0)""",
        arg=[PROMPT],
        timeout=deadline.ms(PICTURE),
        polling="raf",
    )
    result.figures["click_to_picture_s"] = round(time.perf_counter() - start, 2)
    cpu_after = nb.lab.kernel_cpu_seconds(nb.relative)
    if cpu_before is not None and cpu_after is not None:  # what the picture cost the kernel, however busy the machine
        result.figures["click_kernel_cpu_s"] = round(cpu_after - cpu_before, 2)
    result.figures["generate_message"] = nb.page.evaluate(MESSAGES_JS)
    result.figures["picture_px"] = picture.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    nb.screenshot(out, f"{PLAYGROUND}-1-generated", picture)

    click_button(nb, "Save")
    message = wait_for_message(nb, "Saved 1 picture(s)")
    saved = nb.path.parent / "playground-pictures" / "a-red-fox-in-the-snow-ui-check-0000.png"
    if not saved.is_file():
        raise CheckFailed(f"Save said {message!r} but {saved} is not there")
    meta = read_metadata(saved)
    if (meta.get("prompt"), meta.get("seed"), meta.get("notebook")) != (PROMPT, "0", PLAYGROUND):
        raise CheckFailed(f"{saved.name} has the wrong metadata: {meta}")
    result.figures["saved"] = str(saved)

    steps = widget_with_label(page, "text", "Steps")
    type_into(nb, steps, 0)
    click_button(nb, "Generate")
    result.figures["bad_value_message"] = wait_for_message(nb, "Not generated: num_inference_steps must be")
    nb.screenshot(out, f"{PLAYGROUND}-2-bad-value", page.locator(".widget-button", has_text="Generate"))
    type_into(nb, steps, 10)

    click_button(nb, "random seed")
    seed = widget_with_label(page, "text", "Seed")
    page.wait_for_function(
        "el => el.value !== '0'", arg=seed.element_handle(timeout=deadline.ms(STEP)), timeout=deadline.ms(STEP)
    )
    click_button(nb, "Generate")
    wait_for_message(nb, "Made 1 picture(s)", PICTURE)
    history = page.locator(".widget-button", has_text=re.compile(r"^seed \d+$"))
    history.nth(1).wait_for(timeout=deadline.ms(STEP))
    type_into(nb, prompt, "something else")
    click_button(nb, "seed 0")  # the first picture's entry, now second in the history strip
    wait_for_message(nb, "Restored the settings of seed 0")
    restored = (prompt.input_value(), seed.input_value())
    if restored != (PROMPT, "0"):
        raise CheckFailed(f"the history restored prompt and seed {restored}, not {(PROMPT, '0')}")
    nb.screenshot(out, f"{PLAYGROUND}-3-restored", page.locator(".widget-button", has_text="Generate"))
