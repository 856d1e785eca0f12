import pytest

from helpers.charts import bar_chart, figure_to_image


def test_one_panel_per_series_one_bar_per_label_first_on_top():
    series = {"seconds": [1, 2, 3], "MiB": [10, 20, 30]}
    fig = bar_chart(["a", "b", "c"], series, title="t", value_format={"MiB": "{:.0f}"})
    left, right = fig.axes
    assert [t.get_text() for t in left.get_yticklabels()] == ["a", "b", "c"]
    assert left.get_ylim()[0] > left.get_ylim()[1]  # inverted: "a" on top
    assert (left.get_xlabel(), right.get_xlabel()) == ("seconds", "MiB")
    assert [t.get_text() for t in right.texts] == ["10", "20", "30"]
    assert [t.get_text() for t in left.texts] == ["1.00", "2.00", "3.00"]


def test_figure_to_image_gives_the_figure_size_in_pixels():
    fig = bar_chart(["a"], {"x": [1.0]})
    image = figure_to_image(fig, dpi=50)
    assert image.mode == "RGB"
    assert image.size == (round(fig.get_figwidth() * 50), round(fig.get_figheight() * 50))


@pytest.mark.parametrize(
    ("labels", "series", "message"),
    [
        ([], {"x": []}, r"labels is empty"),
        (["a"], {}, r"series is empty"),
        (["a", "b"], {"seconds": [1.0]}, r"series 'seconds' has 1 values for 2 labels"),
    ],
)
def test_bad_charts_are_explained(labels, series, message):
    with pytest.raises(ValueError, match=message):
        bar_chart(labels, series)


def test_a_chart_shows_as_a_picture_in_jupyter_without_pyplot():
    from IPython.core.formatters import DisplayFormatter

    data, _ = DisplayFormatter().format(bar_chart(["a", "b"], {"x": [1, 2]}, title="Time per image"))
    assert data["image/png"].startswith(b"\x89PNG")
    assert data["text/plain"] == "chart: Time per image"
