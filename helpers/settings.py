"""Settings of a pipeline by name: each one applied, undone afterwards, and able to say why it cannot run here.

A :class:`Setting` is the line a learner writes (``pipe.vae.enable_slicing()``) with two functions behind it:
``apply(pipe)`` changes the pipeline and returns what ``undo(pipe, saved)`` needs to put it back as it was. A
:class:`Settings` registry holds the settings of one lesson by name, in the lesson's order: the memory settings
(:data:`helpers.memory.MEMORY_SETTINGS`) and the speed settings (:data:`helpers.speed.SPEED_SETTINGS`) are two
registries of the same class. A registry applies one setting or several together in a ``with`` block, writes
them as a table, and measures each in turn on one pipeline. A setting that cannot run here (CPU offload without
an accelerator, ``torch.compile`` without a compiler) is never silently dropped: it is skipped with the reason.

Example:
    >>> tiling = Setting.toggle(
    ...     "VAE tiling", "pipe.vae.enable_tiling()", lambda pipe: pipe.vae.enable_tiling(),
    ...     lambda pipe: pipe.vae.disable_tiling(),
    ... )
    >>> settings = Settings("memory", [tiling])
    >>> with settings.applied(pipe, "VAE tiling"):
    ...     pipe.vae.use_tiling
    True
    >>> pipe.vae.use_tiling
    False
    >>> print(settings.table())
    | setting | code |
    | --- | --- |
    | VAE tiling | `pipe.vae.enable_tiling()` |
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from .tables import markdown_table


def runs_anywhere(pipe) -> None:
    """The ``why_unavailable`` of a setting that every device can use."""
    return None


@dataclass(frozen=True)
class Setting:
    """A named setting: the code a learner writes, how to apply and undo it, and why it may not run here.

    Args:
        name: what the lessons call it (``"attention slicing"``).
        code: the line that applies it, as a learner writes it.
        apply: ``apply(pipe) -> saved``: change the pipeline; return what ``undo`` needs (or None).
        undo: ``undo(pipe, saved)``: put the pipeline back as it was before ``apply``.
        why_unavailable: ``why_unavailable(pipe) -> str | None``: why this pipeline's device cannot use it, or None.
        compiles: its first call compiles (``torch.compile``): warm up twice at least to see the compile time apart.
    """

    name: str
    code: str
    apply: Callable[[Any], Any]
    undo: Callable[[Any, Any], None]
    why_unavailable: Callable[[Any], str | None] = runs_anywhere
    compiles: bool = False

    @classmethod
    def baseline(cls, code: str) -> Setting:
        """The reference row of a comparison: nothing changed (``code`` says what that means in this lesson)."""
        return cls("baseline", code, lambda pipe: None, lambda pipe, saved: None)

    @classmethod
    def toggle(cls, name: str, code: str, on: Callable, off: Callable, **kwargs) -> Setting:
        """A setting that ``on(pipe)`` switches on and ``off(pipe)`` switches off (slicing, tiling, a memory format)."""
        return cls(name, code, on, lambda pipe, saved: off(pipe), **kwargs)

    @contextlib.contextmanager
    def applied(self, pipe) -> Iterator[Setting]:
        """Apply the setting inside the block and undo it after, even if the block fails.

        It does not ask :attr:`why_unavailable` first: :meth:`Settings.applied` does, for all the settings it applies.
        """
        saved = self.apply(pipe)
        try:
            yield self
        finally:
            self.undo(pipe, saved)


class Comparison(NamedTuple):
    """What :meth:`Settings.compare` returns: ``(results, skipped)``.

    ``results`` holds one measurement per setting that ran, in order; ``skipped`` maps the label of each setting
    that this device cannot use to the reason.
    """

    results: list
    skipped: dict[str, str]


class Settings(Mapping[str, Setting]):
    """The settings of one lesson by name, in the order the lesson shows them.

    Where a method takes ``names``, it is one setting's name or a list of names applied together, in order.
    """

    def __init__(self, topic: str, settings: Iterable[Setting]):
        self.topic = topic  # "memory" or "speed": names the registry in error messages
        self._settings: dict[str, Setting] = {}
        for setting in settings:
            if setting.name in self._settings:
                raise ValueError(f"{topic} settings name {setting.name!r} twice; each name must be unique")
            self._settings[setting.name] = setting

    def __getitem__(self, name: str) -> Setting:
        return self._settings[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._settings)

    def __len__(self) -> int:
        return len(self._settings)

    def __repr__(self) -> str:
        return f"Settings({self.topic!r}, {list(self)})"

    def check(self, names: str | Sequence[str]) -> list[str]:
        """``names`` as a list, each one checked.

        Raises:
            ValueError: an empty list, or an unknown name (the message lists the known ones).
        """
        names = [names] if isinstance(names, str) else list(names)
        if not names:
            raise ValueError(f"give at least one setting name, e.g. [{list(self)[-1]!r}]; use any of {list(self)}")
        for name in names:
            if name not in self._settings:
                raise ValueError(f"Unknown {self.topic} setting name={name!r}; use one of {list(self)}")
        return names

    def label(self, names: str | Sequence[str]) -> str:
        """A row label for one setting or a combination: ``"channels_last + torch.compile"``."""
        return " + ".join(self.check(names))

    def why_unavailable(self, pipe, names: str | Sequence[str]) -> str | None:
        """Why the setting, or any of a combination, cannot run on this pipeline's device; None if they all can.

        Example:
            >>> from helpers import MEMORY_SETTINGS
            >>> MEMORY_SETTINGS.why_unavailable(pipe, "VAE slicing") is None
            True
        """
        for name in self.check(names):
            reason = self[name].why_unavailable(pipe)
            if reason:
                return reason
        return None

    def compiles(self, names: str | Sequence[str]) -> bool:
        """Whether the setting, or any of a combination, compiles on its first call."""
        return any(self[name].compiles for name in self.check(names))

    @contextlib.contextmanager
    def applied(self, pipe, names: str | Sequence[str]) -> Iterator[list[str]]:
        """Apply one setting or several in order inside the block; undo them in reverse order after, even on error.

        Raises:
            ValueError: an unknown name.
            RuntimeError: a setting that cannot run here (see :meth:`why_unavailable`); nothing is applied then.
        """
        names = self.check(names)
        reason = self.why_unavailable(pipe, names)
        if reason:
            raise RuntimeError(f"Cannot apply {self.label(names)!r}: {reason}")
        with contextlib.ExitStack() as stack:
            for name in names:
                stack.enter_context(self[name].applied(pipe))
            yield names

    def table(self, names: Sequence[str] | None = None) -> str:
        """A Markdown table of the settings (all of them, or ``names``) and the line of code that applies each.

        Example:
            >>> from helpers import SPEED_SETTINGS
            >>> print(SPEED_SETTINGS.table(["channels_last"]))
            | setting | code |
            | --- | --- |
            | channels_last | `pipe.unet.to(memory_format=torch.channels_last)` |
        """
        rows = [(name, f"`{self[name].code}`") for name in (self.check(names) if names else self)]
        return markdown_table(rows, ["setting", "code"])

    def compare(
        self,
        pipe,
        settings: Sequence[str | Sequence[str]],
        measure: Callable[[str, list[str]], Any],
        *,
        warm_up: Callable[[], None] | None = None,
    ) -> Comparison:
        """Measure the pipeline under each setting in turn (a name, or a list of names applied together).

        Every name is checked before anything runs. Each setting is undone before the next one is applied.

        Args:
            settings: e.g. ``["baseline", "channels_last", ["channels_last", "torch.compile"]]``.
            measure: ``measure(label, names) -> result``, called with the setting applied; ``label`` is what
                :meth:`label` writes for it.
            warm_up: called once, after the names are checked and before the first measurement.

        Returns:
            ``(results, skipped)``: see :class:`Comparison`.

        Example:
            >>> from helpers import MEMORY_SETTINGS
            >>> MEMORY_SETTINGS.compare(pipe, ["VAE tiling", "model CPU offload"], lambda label, names: label)
            Comparison(results=['VAE tiling'], skipped={'model CPU offload': 'model CPU offload keeps the weights ...'})
        """
        if isinstance(settings, str) or not settings:
            raise ValueError(
                f"give a non-empty list of setting names (or of lists of names, applied together), got {settings!r}; "
                f"e.g. {list(self)[:2]}"
            )
        for names in settings:
            self.check(names)
        if warm_up is not None:
            warm_up()
        results, skipped = [], {}
        for names in settings:
            label = self.label(names)
            reason = self.why_unavailable(pipe, names)
            if reason:
                skipped[label] = reason
                continue
            with self.applied(pipe, names) as applied:
                results.append(measure(label, applied))
        return Comparison(results, skipped)
