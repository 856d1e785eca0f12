"""The world of captioned pictures: drawn the same from a seed, judged right from its pixels, held-out kept out."""

from dataclasses import replace

import numpy as np
import pytest

from helpers.standins import world
from helpers.standins.world import HELD_OUT, SCENES, Sampler, Scene, Thing, all_things, draw, judge


def test_a_seed_draws_the_same_picture_and_another_seed_another():
    thing = Thing(colour="red", shape="sailboat", position="left", background="sea", size="big")
    first, again, other = draw(thing, seed=3), draw(thing, seed=3), draw(thing, seed=4)
    assert first.size == (64, 64) and first.mode == "RGB"
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(other))


def test_captions_read_naturally():
    thing = Thing(colour="red", shape="sailboat", position="left", background="night", size="small")
    assert thing.caption() == "a small red sailboat on the left of a starry night"
    assert replace(thing, styled=True).caption().endswith(", mdjrny-v4 style")
    assert Thing(colour="blue", shape="ball").caption() == "a blue ball"
    assert Thing(shape="fish", background="sea").caption() == "a fish on a calm sea"
    assert Scene("beach").caption() == "Beach, sailboat, cruise ship"


def test_the_judge_reads_every_drawn_thing_right():
    """The judge is the world's own knowledge: on the world's own pictures it must be (almost) never wrong."""
    things = all_things()[::5]  # 192 of them, every attribute included
    wrong = [t for i, t in enumerate(things) if _misread(t, judge(draw(t, seed=i)))]
    assert len(wrong) <= len(things) // 100, wrong[:5]


def _misread(thing, found):
    return (found.colour, found.position, found.background, found.styled) != (
        thing.colour,
        thing.position,
        thing.background,
        False,
    )


@pytest.mark.parametrize("name", sorted(SCENES))
def test_the_judge_tells_the_style_by_its_frame(name):
    assert judge(draw(Scene(name, styled=True), seed=1)).styled
    assert not judge(draw(Scene(name), seed=1)).styled


def test_held_out_combinations_are_never_drawn_for_training():
    sampler = Sampler(seed=0, partial_share=0.5, style_share=0.3)
    drawn = [sampler.item()[0] for _ in range(3000)]
    things = [replace(d, styled=False) for d in drawn if isinstance(d, Thing)]
    assert things and not any(t in HELD_OUT for t in things)
    assert 0.05 < len(HELD_OUT) / len(all_things()) < 0.15
    # every part of a held-out combination is seen in training, only never together
    for attribute in ("colour", "shape", "position", "background"):
        assert {getattr(t, attribute) for t in HELD_OUT} <= {getattr(t, attribute) for t in things}


def test_no_colour_is_drawn_on_its_own_background():
    for colour, background in world.CLASHES:
        assert not [t for t in all_things() if (t.colour, t.background) == (colour, background)]


def test_a_partial_caption_describes_a_full_picture():
    sampler = Sampler(seed=1, partial_share=1.0, scene_share=0.0)
    drawn, said = sampler.item()
    assert None not in (drawn.colour, drawn.shape, drawn.position, drawn.background, drawn.size)
    for attribute in ("colour", "shape", "position", "background", "size"):
        assert getattr(said, attribute) in (None, getattr(drawn, attribute))


def test_colour_share_counts_the_named_colour():
    picture = draw(Thing(colour="red", shape="box", position="middle", background="snow", size="big"), seed=0)
    assert world.colour_share(picture, "red") > 0.1
    assert world.colour_share(picture, "blue") == 0.0


def test_an_unknown_shape_or_scene_is_refused_by_name():
    with pytest.raises(ValueError, match=r"shape='kite' is not one of the world's shapes"):
        draw(Thing(colour="red", shape="kite", position="left", background="sea", size="big"))
    with pytest.raises(ValueError, match=r"scene='forest' is not one of the world's scenes"):
        draw(Scene("forest"))
