"""The OCR engine behind :mod:`bot.ocr`: rapidocr-onnxruntime with the PP-OCR models in its wheel.

This is the only module that imports the OCR library (like the platform libraries, it stays
in ``bot/adapters/``); :mod:`bot.ocr` imports it on the first picture, so a bot that never
sees one never loads onnxruntime or the models (~100 MB resident, more while reading).
Nothing is downloaded: the detection, direction and recognition models ship in the package.
"""

from __future__ import annotations

from rapidocr_onnxruntime import RapidOCR

from bot.ocr_layout import TextBox

#: bot.ocr bounds the picture itself (and cuts tall ones into tiles): let the engine keep it whole.
ENGINE_MAX_SIDE = 4096


class RapidOcrEngine:
    """Callable: a Pillow RGB image in, text boxes in that image's pixels out."""

    def __init__(self) -> None:
        self._ocr = RapidOCR(max_side_len=ENGINE_MAX_SIDE)

    def __call__(self, image) -> list[TextBox]:
        result, _elapsed = self._ocr(image)
        return [TextBox.from_quad(quad, text, score) for quad, text, score in result or ()]


def load_engine() -> RapidOcrEngine:
    return RapidOcrEngine()
