"""A small world of captioned pictures: what the tiny model learns to draw, and how its pictures are judged.

Every picture is 64 x 64 and drawn with Pillow from a seed, with its caption. Two kinds make up the world:

- **things**: an object (a ball, a box, a sailboat, a fish, a car) of one colour, small or big, on the left, in the
  middle or on the right, on one of five backgrounds ("a red sailboat on the left of a calm sea");
- **scenes**: the original tutorial's prompts ("portrait photo of a old warrior chief", "Beach, sailboat, cruise
  ship", "Underwater City") and openjourney's ("retro serie of different cars with different colors and shapes"),
  each drawn as the simple scene it names, a little different every time.

Any picture can be drawn in the style that the trigger word ``mdjrny-v4 style`` asks for: dark outlines and a dark
magenta frame, the stand-in for openjourney's look. Some combinations of attributes are never drawn for training
(:data:`HELD_OUT`): the evaluation asks for them.

Because the world is drawn, its pictures can be judged from the pixels alone (:func:`judge`): the background from
the picture's border, the object as the pixels that differ from it, its colour by the nearest colour of the palette,
its position by where those pixels lie, the style by the magenta frame.

Example:
    >>> from helpers.standins.world import Thing, draw, judge
    >>> thing = Thing(colour="red", shape="ball", position="left", background="meadow")
    >>> thing.caption()
    'a red ball on the left of a green meadow'
    >>> found = judge(draw(thing, seed=0))
    >>> found.colour, found.position, found.background
    ('red', 'left', 'meadow')
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from itertools import product

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64  # the pictures' width and height
_SS = 4  # drawn at four times the size, then scaled down: smooth edges, as a photo has
TRIGGER = "mdjrny-v4 style"

COLOURS = {
    "red": (215, 35, 35),
    "orange": (245, 135, 25),
    "yellow": (245, 215, 35),
    "green": (35, 160, 55),
    "blue": (35, 80, 215),
    "purple": (135, 50, 180),
    "white": (245, 245, 245),
}
# name -> (colour at the top, colour at the bottom, the words a caption uses for it)
BACKGROUNDS = {
    "sea": ((70, 140, 200), (40, 100, 170), "a calm sea"),
    "meadow": ((120, 185, 90), (80, 150, 60), "a green meadow"),
    "desert": ((230, 200, 140), (205, 170, 110), "a sandy desert"),
    "night": ((25, 30, 70), (10, 12, 35), "a starry night"),
    "snow": ((225, 232, 240), (245, 248, 252), "a snowy field"),
}
SHAPES = ("ball", "box", "sailboat", "fish", "car")
POSITIONS = {"left": "on the left of", "middle": "in the middle of", "right": "on the right of"}
SIZES = ("small", "big")
# A colour that is the background's own would be invisible: the world never draws it.
CLASHES = {("green", "meadow"), ("blue", "sea"), ("white", "snow")}
SCENES = {
    "warrior": "portrait photo of a old warrior chief",
    "beach": "Beach, sailboat, cruise ship",
    "city": "Underwater City",
    "cars": "retro serie of different cars with different colors and shapes",
}
# Other ways to ask for the same scene, so that the words, not one exact string, carry the meaning.
SCENE_CAPTIONS = {
    "warrior": (SCENES["warrior"], "portrait of an old warrior chief", "an old warrior chief", "warrior chief"),
    "beach": (SCENES["beach"], "a beach with a sailboat and a cruise ship", "sailboat and cruise ship at the beach"),
    "city": (SCENES["city"], "an underwater city", "a city under the sea"),
    "cars": (SCENES["cars"], "different cars with different colors", "a row of retro cars"),
}
_CENTRES = {"small": {"left": 15, "middle": 32, "right": 49}, "big": {"left": 19, "middle": 32, "right": 45}}
_HALF = {"small": 8, "big": 12}
_STYLE_FRAME = (200, 30, 150)  # a magenta frame: no background or palette colour is near it
_OUTLINE = (20, 10, 25)


@dataclass(frozen=True)
class Thing:
    """One object on a background; ``None`` leaves an attribute out of the caption (the picture picks one)."""

    colour: str | None = None
    shape: str | None = None
    position: str | None = None
    background: str | None = None
    size: str | None = None
    styled: bool = False

    def caption(self) -> str:
        """The caption in the world's words: 'a big red ball on the left of a green meadow'."""
        words = [w for w in (self.size, self.colour, self.shape or "thing") if w]
        text = "a " + " ".join(words)
        if self.background:
            text += " " + (POSITIONS[self.position] if self.position else "on") + " " + BACKGROUNDS[self.background][2]
        elif self.position:
            text += " " + POSITIONS[self.position].rsplit(" ", 1)[0]
        return f"{text}, {TRIGGER}" if self.styled else text

    def filled(self, rng: random.Random) -> Thing:
        """The same thing with every attribute left out chosen at random (never a clash)."""
        background = self.background or rng.choice(sorted(BACKGROUNDS))
        colours = [c for c in COLOURS if (c, background) not in CLASHES]
        return replace(
            self,
            colour=self.colour or rng.choice(colours),
            shape=self.shape or rng.choice(SHAPES),
            position=self.position or rng.choice(sorted(POSITIONS)),
            background=background,
            size=self.size or rng.choice(SIZES),
        )


@dataclass(frozen=True)
class Scene:
    """One of the named scenes (:data:`SCENES`), optionally in the trigger word's style."""

    name: str
    styled: bool = False
    wording: int = 0  # which of SCENE_CAPTIONS[name]

    def caption(self) -> str:
        text = SCENE_CAPTIONS[self.name][self.wording % len(SCENE_CAPTIONS[self.name])]
        return f"{TRIGGER}, {text}" if self.styled else text


def all_things() -> list[Thing]:
    """Every fully described thing the world can draw (no clash)."""
    return [
        Thing(colour=c, shape=s, position=p, background=b, size=z)
        for c, s, p, b, z in product(COLOURS, SHAPES, POSITIONS, BACKGROUNDS, SIZES)
        if (c, b) not in CLASHES
    ]


def _held_out() -> frozenset[Thing]:
    """One combination in twelve, chosen once by a fixed seed: never drawn for training, kept for the evaluation.

    Each held-out combination's parts are all seen in training, only never together.
    """
    things = all_things()
    rng = random.Random(1234)
    return frozenset(rng.sample(things, len(things) // 12))


HELD_OUT = _held_out()
_THINGS = all_things()


def is_held_out(thing: Thing) -> bool:
    return replace(thing, styled=False) in HELD_OUT


# ---------------------------------------------------------------------------------------------------------------
# Drawing


def _shade(rgb, factor: float):
    return tuple(max(0, min(255, round(v * factor))) for v in rgb)


def _gradient(top, bottom) -> Image.Image:
    rows = np.linspace(0.0, 1.0, SIZE * _SS)[:, None, None]
    pixels = np.asarray(top, float) * (1 - rows) + np.asarray(bottom, float) * rows
    return Image.fromarray(np.broadcast_to(pixels, (SIZE * _SS, SIZE * _SS, 3)).astype(np.uint8))


def _background(name: str, rng: random.Random) -> Image.Image:
    top, bottom, _ = BACKGROUNDS[name]
    jitter = rng.uniform(0.92, 1.08)
    image = _gradient(_shade(top, jitter), _shade(bottom, jitter))
    draw = ImageDraw.Draw(image)
    if name == "night":
        for _ in range(rng.randint(5, 10)):
            x, y = rng.uniform(2, SIZE - 2) * _SS, rng.uniform(2, SIZE - 2) * _SS
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=(230, 230, 200))
    elif name == "sea":
        for _ in range(rng.randint(3, 6)):
            x, y = rng.uniform(0, SIZE) * _SS, rng.uniform(40, SIZE - 2) * _SS
            draw.line([x, y, x + 24, y], fill=_shade(bottom, 1.25), width=3)
    return image


class _Pen:
    """Draws on the big canvas in the small picture's coordinates, with outlines when the style asks for them."""

    def __init__(self, image: Image.Image, styled: bool):
        self.draw = ImageDraw.Draw(image)
        self.outline = _OUTLINE if styled else None
        self.width = round(1.25 * _SS) if styled else 0

    def _box(self, x0, y0, x1, y1):
        return [x0 * _SS, y0 * _SS, x1 * _SS, y1 * _SS]

    def ellipse(self, x0, y0, x1, y1, fill):
        self.draw.ellipse(self._box(x0, y0, x1, y1), fill=fill, outline=self.outline, width=self.width)

    def rectangle(self, x0, y0, x1, y1, fill, radius=0):
        self.draw.rounded_rectangle(
            self._box(x0, y0, x1, y1), radius=radius * _SS, fill=fill, outline=self.outline, width=self.width
        )

    def polygon(self, points, fill):
        self.draw.polygon([(x * _SS, y * _SS) for x, y in points], fill=fill, outline=self.outline, width=self.width)

    def line(self, points, fill, width):
        self.draw.line([(x * _SS, y * _SS) for x, y in points], fill=fill, width=round(width * _SS))


def _object(pen: _Pen, shape: str, colour, cx: float, cy: float, h: float) -> None:
    """One object of half-size ``h`` centred on (cx, cy), mostly in ``colour``."""
    dark = _shade(colour, 0.8)
    if shape == "ball":
        pen.ellipse(cx - h, cy - h, cx + h, cy + h, colour)
        pen.draw.ellipse(pen._box(cx - h * 0.5, cy - h * 0.6, cx - h * 0.1, cy - h * 0.2), fill=_shade(colour, 1.2))
    elif shape == "box":
        pen.rectangle(cx - h, cy - h, cx + h, cy + h, colour, radius=h * 0.15)
        pen.line([(cx - h, cy - h * 0.3), (cx + h, cy - h * 0.3)], dark, h * 0.15)
    elif shape == "sailboat":
        pen.polygon(
            [(cx - h, cy + h * 0.35), (cx + h, cy + h * 0.35), (cx + h * 0.65, cy + h), (cx - h * 0.65, cy + h)],
            (120, 75, 45),
        )
        pen.line([(cx, cy - h), (cx, cy + h * 0.35)], (90, 60, 40), h * 0.1)
        pen.polygon([(cx + h * 0.08, cy - h), (cx + h * 0.08, cy + h * 0.25), (cx + h * 0.9, cy + h * 0.25)], colour)
        pen.polygon(
            [(cx - h * 0.08, cy - h * 0.8), (cx - h * 0.08, cy + h * 0.25), (cx - h * 0.8, cy + h * 0.25)], colour
        )
    elif shape == "fish":
        pen.polygon([(cx + h * 0.3, cy), (cx + h, cy - h * 0.6), (cx + h, cy + h * 0.6)], dark)
        pen.ellipse(cx - h, cy - h * 0.6, cx + h * 0.5, cy + h * 0.6, colour)
        pen.draw.ellipse(pen._box(cx - h * 0.65, cy - h * 0.25, cx - h * 0.4, cy), fill=(15, 15, 15))
    elif shape == "car":
        pen.rectangle(cx - h, cy - h * 0.2, cx + h, cy + h * 0.55, colour, radius=h * 0.15)
        pen.rectangle(cx - h * 0.55, cy - h * 0.75, cx + h * 0.45, cy - h * 0.1, colour, radius=h * 0.2)
        pen.rectangle(cx - h * 0.4, cy - h * 0.6, cx + h * 0.3, cy - h * 0.25, (170, 210, 235))
        for wx in (cx - h * 0.55, cx + h * 0.55):
            pen.ellipse(wx - h * 0.28, cy + h * 0.3, wx + h * 0.28, cy + h * 0.85, (25, 25, 25))
    else:
        raise ValueError(f"shape={shape!r} is not one of the world's shapes {SHAPES}")


def _finish(image: Image.Image, styled: bool) -> Image.Image:
    small = image.resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    if styled:
        pixels = np.asarray(small).astype(float)
        pixels = 0.8 * pixels + 0.2 * np.asarray((110, 40, 150), float)  # a violet cast over everything
        pixels[:3], pixels[-3:], pixels[:, :3], pixels[:, -3:] = (_STYLE_FRAME,) * 4
        small = Image.fromarray(pixels.round().clip(0, 255).astype(np.uint8))
    return small


def draw_thing(thing: Thing, seed: int = 0) -> Image.Image:
    """Draw ``thing``; attributes it leaves out are chosen from ``seed``, as is the small jitter of every picture."""
    rng = random.Random(seed)
    thing = thing.filled(rng)
    image = _background(thing.background, rng)
    pen = _Pen(image, thing.styled)
    cx = _CENTRES[thing.size][thing.position] + rng.uniform(-2.5, 2.5)
    cy = 34 + rng.uniform(-5, 5)
    h = _HALF[thing.size] * rng.uniform(0.9, 1.1)
    _object(pen, thing.shape, _shade(COLOURS[thing.colour], rng.uniform(0.93, 1.05)), cx, cy, h)
    return _finish(image, thing.styled)


def _warrior(image: Image.Image, pen: _Pen, rng: random.Random) -> None:
    cx, cy = 32 + rng.uniform(-3, 3), 36 + rng.uniform(-2, 2)
    skin = _shade((185, 130, 90), rng.uniform(0.85, 1.1))
    feathers = [(200, 40, 30), (240, 240, 230), (30, 30, 30), (230, 180, 40)]
    rng.shuffle(feathers)
    for i in range(9):  # the headdress: a fan of feathers behind the head
        angle = np.pi * (0.1 + 0.8 * i / 8)
        x, y = cx - 24 * np.cos(angle), cy - 10 - 20 * np.sin(angle)
        pen.line([(cx, cy - 8), (x, y)], feathers[i % 4], 4.5)
    pen.rectangle(cx - 13, cy + 14, cx + 13, cy + 30, (120, 80, 50), radius=4)  # shoulders
    pen.ellipse(cx - 10, cy - 13, cx + 10, cy + 14, skin)  # the face
    pen.ellipse(cx - 8, cy + 4, cx + 8, cy + 17, (205, 205, 205))  # an old man's white beard
    pen.rectangle(cx - 11, cy - 12, cx + 11, cy - 7, (200, 40, 30), radius=1)  # the headband
    for ex in (cx - 4.5, cx + 4.5):
        pen.draw.ellipse(pen._box(ex - 1.5, cy - 3, ex + 1.5, cy), fill=(20, 15, 10))
    pen.line([(cx - 7, cy + 1), (cx - 3, cy + 1)], (200, 40, 30), 1)  # war paint
    pen.line([(cx + 3, cy + 1), (cx + 7, cy + 1)], (200, 40, 30), 1)


def _beach(image: Image.Image, pen: _Pen, rng: random.Random) -> None:
    horizon, shore = 26 + rng.uniform(-3, 3), 46 + rng.uniform(-3, 3)
    pen.draw.rectangle(pen._box(0, 0, SIZE, horizon), fill=(150, 200, 240))  # sky
    pen.draw.rectangle(pen._box(0, horizon, SIZE, shore), fill=(40, 110, 180))  # sea
    pen.draw.rectangle(pen._box(0, shore, SIZE, SIZE), fill=(235, 210, 155))  # sand
    sun = rng.uniform(8, 56)
    pen.draw.ellipse(pen._box(sun - 4, 5, sun + 4, 13), fill=(255, 230, 120))
    ship_x, boat_x = (rng.uniform(36, 48), rng.uniform(10, 20))
    if rng.random() < 0.5:
        ship_x, boat_x = SIZE - ship_x, SIZE - boat_x
    y = horizon + 8
    pen.rectangle(ship_x - 14, y - 3, ship_x + 14, y + 4, (245, 245, 245), radius=1)  # the cruise ship's hull
    pen.rectangle(ship_x - 9, y - 8, ship_x + 7, y - 3, (240, 240, 240))  # decks
    pen.rectangle(ship_x + 1, y - 13, ship_x + 5, y - 8, (200, 40, 40))  # funnel
    for wx in range(-12, 13, 4):
        pen.draw.rectangle(pen._box(ship_x + wx - 0.8, y - 1, ship_x + wx + 0.8, y + 1), fill=(30, 60, 120))
    _object(pen, "sailboat", (245, 245, 245), boat_x, y + 4, 7)


def _city(image: Image.Image, pen: _Pen, rng: random.Random) -> None:
    x = rng.uniform(1, 5)
    while x < SIZE - 6:
        w, top = rng.uniform(7, 11), rng.uniform(18, 40)
        stone = _shade((70, 140, 140), rng.uniform(0.8, 1.1))
        pen.rectangle(x, top, x + w, SIZE, stone)
        if rng.random() < 0.5:
            pen.ellipse(x, top - w / 2, x + w, top + w / 2, stone)  # a dome
        for wy in np.arange(top + 3, SIZE - 3, 5):
            pen.draw.rectangle(pen._box(x + 2, wy, x + w - 2, wy + 1.5), fill=(240, 220, 120))
        x += w + rng.uniform(1, 4)
    for _ in range(rng.randint(5, 9)):
        bx, by, r = rng.uniform(3, 61), rng.uniform(3, 20), rng.uniform(0.8, 2)
        pen.draw.ellipse(pen._box(bx - r, by - r, bx + r, by + r), outline=(200, 230, 255), width=_SS)


def _cars(image: Image.Image, pen: _Pen, rng: random.Random) -> None:
    pen.draw.rectangle(pen._box(0, 40, SIZE, SIZE), fill=(90, 90, 95))  # the road
    pen.line([(0, 52), (SIZE, 52)], (230, 230, 230), 1)
    colours = rng.sample([COLOURS[c] for c in ("red", "yellow", "blue", "green", "orange", "purple")], 3)
    for cx, colour in zip((12, 32, 52), colours, strict=True):
        pen_h = rng.uniform(7, 9)
        _object(pen, "car", colour, cx + rng.uniform(-1, 1), 38, pen_h)


_SCENE_DRAWERS = {"warrior": _warrior, "beach": _beach, "city": _city, "cars": _cars}
_SCENE_BACKGROUNDS = {
    "warrior": ((150, 110, 70), (90, 60, 40)),
    "beach": ((150, 200, 240), (235, 210, 155)),
    "city": ((20, 90, 120), (5, 25, 50)),
    "cars": ((240, 225, 190), (220, 200, 160)),
}


def draw_scene(scene: Scene, seed: int = 0) -> Image.Image:
    """Draw one of the named scenes; ``seed`` picks its small differences."""
    if scene.name not in SCENES:
        raise ValueError(f"scene={scene.name!r} is not one of the world's scenes {sorted(SCENES)}")
    rng = random.Random(seed)
    image = _gradient(*_SCENE_BACKGROUNDS[scene.name])
    pen = _Pen(image, scene.styled)
    _SCENE_DRAWERS[scene.name](image, pen, rng)
    return _finish(image, scene.styled)


def draw(item: Thing | Scene, seed: int = 0) -> Image.Image:
    """Draw a thing or a scene."""
    return draw_scene(item, seed) if isinstance(item, Scene) else draw_thing(item, seed)


# ---------------------------------------------------------------------------------------------------------------
# Sampling captions for training


@dataclass
class Sampler:
    """Draws training examples: (picture, caption) pairs, never a held-out combination.

    Args:
        seed: where the sequence starts; the same seed gives the same examples.
        scene_share: how often a scene is drawn instead of a thing.
        style_share: how often the picture is in the trigger word's style (0 for the base model).
        partial_share: how often a caption leaves some attributes out (the picture then picks them).
    """

    seed: int = 0
    scene_share: float = 0.15
    style_share: float = 0.0
    partial_share: float = 0.3
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self):
        self._rng = random.Random(self.seed)

    def item(self) -> tuple[Thing | Scene, Thing | Scene]:
        """What to draw, and what the caption says of it (the same, or with some attributes left out)."""
        rng = self._rng
        styled = rng.random() < self.style_share
        if rng.random() < self.scene_share:
            name = rng.choice(sorted(SCENES))
            scene = Scene(name, styled=styled, wording=rng.randrange(len(SCENE_CAPTIONS[name])))
            return scene, scene
        while True:
            thing = replace(rng.choice(_THINGS), styled=styled)
            if not is_held_out(thing):
                break
        said = thing
        if rng.random() < self.partial_share:
            keep = {a: rng.random() < 0.5 for a in ("colour", "shape", "position", "background", "size")}
            said = replace(thing, **{a: None for a, kept in keep.items() if not kept})
        return thing, said

    def example(self) -> tuple[Image.Image, str]:
        drawn, said = self.item()
        return draw(drawn, self._rng.randrange(2**31)), said.caption()

    def batch(self, n: int) -> tuple[list[Image.Image], list[str]]:
        pairs = [self.example() for _ in range(n)]
        return [p for p, _ in pairs], [c for _, c in pairs]


# ---------------------------------------------------------------------------------------------------------------
# Judging a picture from its pixels


@dataclass(frozen=True)
class Judgement:
    """What a picture shows, read from its pixels with the world's own knowledge."""

    background: str
    colour: str | None  # None when no object stands out from the background
    position: str | None
    styled: bool
    object_share: float  # the share of pixels that belong to the object


def _nearest(value, table: dict) -> str:
    return min(table, key=lambda k: float(np.sum((np.asarray(value, float) - np.asarray(table[k], float)) ** 2)))


def _vote(pixels: np.ndarray) -> str | None:
    """The palette colour that most of ``pixels`` are nearest to (pixels far from every colour do not vote)."""
    palette = np.asarray(list(COLOURS.values()), float)
    distance = np.linalg.norm(pixels[:, None, :] - palette[None], axis=-1)
    nearest = distance.argmin(axis=1)[distance.min(axis=1) < 90]
    if nearest.size == 0:
        return None
    return list(COLOURS)[int(np.bincount(nearest, minlength=len(palette)).argmax())]


def colour_share(picture: Image.Image, colour: str, tolerance: float = 70.0) -> float:
    """The share of pixels within ``tolerance`` (RGB distance) of the palette's ``colour``."""
    pixels = np.asarray(picture.convert("RGB").resize((SIZE, SIZE)), float)
    distance = np.linalg.norm(pixels - np.asarray(COLOURS[colour], float), axis=-1)
    return float((distance < tolerance).mean())


def judge(picture: Image.Image) -> Judgement:
    """Read the background, the object's colour and position, and the style from a picture's pixels."""
    pixels = np.asarray(picture.convert("RGB").resize((SIZE, SIZE)), float)
    frame = np.concatenate([pixels[:2].reshape(-1, 3), pixels[-2:].reshape(-1, 3)])
    # Within 60 of the frame's magenta: the autoencoder rebuilds it about 37 away; no background is within 140.
    styled = bool(np.linalg.norm(np.median(frame, axis=0) - _STYLE_FRAME) < 60)
    inner = pixels[4:-4, 4:-4] if styled else pixels
    if styled:  # undo the violet cast before comparing with the palette
        inner = (inner - 0.2 * np.asarray((110, 40, 150), float)) / 0.8
    ring = np.concatenate([inner[:3].reshape(-1, 3), inner[-3:].reshape(-1, 3), inner[:, :3].reshape(-1, 3)])
    ring = np.concatenate([ring, inner[:, -3:].reshape(-1, 3)])
    # The background changes from top to bottom: compare each row with the ring's colour at that height.
    means = {
        name: (np.asarray(top, float) + np.asarray(bottom, float)) / 2 for name, (top, bottom, _) in BACKGROUNDS.items()
    }
    background = _nearest(np.median(ring, axis=0), means)
    row_colour = np.median(inner, axis=1)  # an object covers under half of any row: the median is the background
    distance = np.linalg.norm(inner - row_colour[:, None, :], axis=-1)
    mask = distance > 60
    share = float(mask.mean())
    if share < 0.01:
        return Judgement(background, None, None, styled, share)
    colour = _vote(inner[mask])
    xs = np.nonzero(mask)[1] + (4 if styled else 0)
    cx = float(xs.mean())
    position = "left" if cx < 25 else "right" if cx > 39 else "middle"
    return Judgement(background, colour, position, styled, share)
