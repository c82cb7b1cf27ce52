"""Other writers' digits (``bench/writers.py``): built deterministically, apart from the
training fonts, and read well enough by the shipped weights.

The set needs the Debian font packages in ``bench.writers.PACKAGES``; without them these
tests fail with the packages to install, as ``python -m bench proxies`` does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import writers
from nn_server.engine.serving import load
from nn_server.networks import fonts
from nn_server.networks.base import Network
from nn_server.networks.lenet import LeNet
from nn_server.training import synthetic

PER_FAMILY = 4
STROKES = 12
"""Per digit: 4 images from each of the 14 font families, 12 drawn with strokes (680 in all)."""
# The shipped weights (pens, narrow hands and blur in training) score 97.2 % here, 92.6 %
# on their weakest digits (1 and 8); int8 97.4 %. The font digits alone scored 96.2 %,
# 89.7 % (3); the weights before any, 92.2 %, 86.8 % (8): both fail these floors.
FLOOR = 0.965
DIGIT_FLOOR = 0.9
"""No digit may trail far: 68 images each, so a digit's figure moves ±3 points by chance."""


@pytest.fixture(scope="module")
def samples() -> list[writers.Sample]:
    return writers.build(PER_FAMILY, STROKES)


def test_a_slice_is_the_same_images_every_time(samples: list[writers.Sample]) -> None:
    again = writers.build(1, 2)
    assert len(again) == 10 * len(writers.FAMILIES) + 20
    # Each image has its own seed: the smaller build is the bigger one's first images.
    font_part = [s for s in samples if s.part == "fonts"]
    stroke_part = [s for s in samples if s.part == "strokes"]
    assert [s.data for s in again] == [
        *(s.data for i, s in enumerate(font_part) if i % PER_FAMILY == 0),
        *(s.data for i, s in enumerate(stroke_part) if i % STROKES < 2)]
    assert [s.data for s in writers.build(1, 2)] == [s.data for s in again]
    assert [s.data for s in writers.build(1, 2, seed=1)] != [s.data for s in again]


def test_every_digit_and_source_is_there(samples: list[writers.Sample]) -> None:
    labels = np.array([s.label for s in samples])
    assert np.bincount(labels).tolist() == [PER_FAMILY * len(writers.FAMILIES) + STROKES] * 10
    assert {s.source for s in samples if s.part == "fonts"} == set(writers.FAMILIES)
    assert {s.source for s in samples if s.part == "strokes"} == {
        f"{d}/{style}" for d, styles in writers.TEMPLATES.items() for style in styles}


def test_each_image_is_a_file_the_server_reads(samples: list[writers.Sample]) -> None:
    net = LeNet()
    for sample in samples[::17]:
        digit = net.preprocess(sample.data)
        assert digit.shape == (1, 28, 28) and digit.dtype == np.uint8
        assert digit.max() == 255


def test_training_never_sees_an_evaluation_hand() -> None:
    assert not set(writers.FAMILIES) & set(synthetic.FAMILIES)
    assert not {f.file for f in writers.FACES} & {f.file for f in synthetic.FACES}


def test_a_missing_font_names_its_package(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    monkeypatch.setattr(fonts, "FONT_ROOTS", (tmp_path,))
    with pytest.raises(fonts.MissingFont, match="apt-get install fonts-dkg-handwriting"):
        writers.build(1, 1)


@pytest.mark.parametrize("precision", ["float", "int8"])
def test_shipped_weights_read_other_writers(samples: list[writers.Sample],
                                            precision: str) -> None:
    net: Network
    if precision == "float":
        net = LeNet()
        net.initialize()
    else:
        net = load(LeNet, LeNet.shipped_weights(), "onnx", "int8")
    result = writers.evaluate(net, samples)
    assert result.accuracy() >= FLOOR, result.table()
    assert min(result.per_digit()) >= DIGIT_FLOOR, result.table()


def test_install_sh_installs_every_font_package() -> None:
    """What a fresh machine gets (install.sh) is what the code draws from."""
    script = (Path(__file__).resolve().parents[1] / "install.sh").read_text()

    def listed(name: str) -> set[str]:
        start = script.index(f'{name}="') + len(name) + 2
        return set(script[start:script.index('"', start)].split())

    assert set(synthetic.PACKAGES) <= listed("TRAINING_FONTS")
    assert set(writers.PACKAGES) <= listed("WRITERS_FONTS")
