"""Reading the text in a forwarded screenshot, on this machine, with no outside service.

Residents forward screenshots of chats and SMS more often than text. This module turns the
bytes of a picture into :class:`ImageText` (the message, bubble by bubble, without the phone's
status bar and app chrome) and gives adapters one call, :meth:`PictureReader.respond`, that
does the rest: per-chat picture limit, OCR in a worker thread, the consultation's answer.

The OCR library is optional (``pip install "fanzha[ocr]"``) and imported on the first picture
only (see :mod:`bot.adapters.ocr_engine`); without it, :class:`OcrUnavailable` says what to
install and the bot kindly asks for the text instead. Pictures are checked before decoding:
too large a file, absurd dimensions (decompression bombs) and non-images are refused with
:class:`ImageRefused`; big pictures are downscaled and tall ones (long screenshots) cut into
overlapping tiles, so one picture costs a bounded time and memory.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
import warnings
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from bot.messages import GROUP, IncomingMessage, Outcome
from bot.ocr_layout import TextBox, assemble

if TYPE_CHECKING:
    from bot.consultation import Consultation

#: Larger files are refused unread (Telegram's bots may fetch at most 20 MB anyway).
MAX_FILE_BYTES = 20 * 1024 * 1024
#: Refused from the header, before decoding: ~50 MP is far beyond any screenshot (a bomb or a poster).
MAX_PIXELS = 50_000_000
#: Longer / shorter side beyond this is no screenshot (1 x 40000 strips and the like).
MAX_ASPECT = 30.0
MIN_SIDE = 8
#: Pictures are read with their short side at most this many pixels: phone text stays ~2x the
#: recognizer's 48-pixel line height, and detection time grows with the pixel count.
OCR_SHORT_SIDE = 720
#: Taller than this many widths (a long screenshot): read in tiles of TILE_RATIO widths.
TALL_RATIO = 2.5
TILE_RATIO = 2.0
#: Tiles overlap by this share of the width, more than any line of text is tall.
TILE_OVERLAP = 0.12
#: At most this many tiles (about a second each): longer pictures are downscaled to fit.
MAX_TILES = 6
IMAGE_FORMATS = frozenset({"PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP", "TIFF"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
INSTALL_HINT = 'reading pictures needs the OCR extra: pip install "fanzha[ocr]"'


class OcrUnavailable(RuntimeError):
    """No text can be had from this picture by OCR: the extra is not installed (or see below).

    :class:`ImageRefused` derives from it, so code that only needs "OCR cannot help here"
    (``fanzha check --image``) handles both with one ``except``.
    """


class ImageRefused(OcrUnavailable):
    """The file is not a picture we will read; ``reason`` says why, in words an operator can act on."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.reason = reason
        #: Stable name: too_large, not_an_image, too_many_pixels, odd_shape, damaged, unreadable_file,
        #: download_failed, too_slow, untrusted_host.
        self.code = code


@dataclass(frozen=True)
class ImageText:
    """What a picture says: one line per chat bubble in ``text``, the rows of text in ``lines``."""

    text: str
    lines: tuple[str, ...]
    bubbles: tuple[str, ...] = ()
    #: Rows recognised as status bar, title bar, input bar or timestamps (for tests; never logged).
    dropped: tuple[str, ...] = ()
    size: tuple[int, int] = (0, 0)
    read_size: tuple[int, int] = (0, 0)
    seconds: float = 0.0


# Reading -------------------------------------------------------------------------------------
def read_image_file(path: str | Path) -> ImageText:
    """Read the text of the picture in *path* (the size is checked before the file is read)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        data = None if size > MAX_FILE_BYTES else path.read_bytes()
    except OSError as exc:
        raise ImageRefused(f"{path}: cannot read the file ({exc.strerror or exc})", "unreadable_file") from None
    try:
        if data is None:
            raise ImageRefused(_too_large(size), "too_large")
        return read_image_bytes(data)
    except ImageRefused as exc:
        raise ImageRefused(f"{path}: {exc.reason}", exc.code) from None


def read_image_bytes(data: bytes, *, engine: Callable | None = None) -> ImageText:
    """Read the text of a picture given as encoded bytes (PNG, JPEG, WebP, ...).

    Raises :class:`ImageRefused` for what is not a readable picture of sane size and
    :class:`OcrUnavailable` when the OCR extra is not installed. *engine* (tests) replaces
    the OCR engine: a callable from a Pillow RGB image to :class:`TextBox` es.
    """
    started = time.perf_counter()
    image, original = load_image(data)
    boxes = _read_tiles(image, engine or _engine())
    layout = assemble(boxes, image.width, image.height)
    return ImageText(
        text=layout.text,
        lines=layout.lines,
        bubbles=layout.bubbles,
        dropped=layout.dropped,
        size=original,
        read_size=image.size,
        seconds=time.perf_counter() - started,
    )


def load_image(data: bytes):
    """Decode *data* into an upright RGB Pillow image at reading size; also return the original size."""
    Image, ImageOps = _pillow()
    if len(data) > MAX_FILE_BYTES:
        raise ImageRefused(_too_large(len(data)), "too_large")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))  # reads the header only
    except Image.DecompressionBombError:
        raise ImageRefused("far too many pixels for a screenshot", "too_many_pixels") from None
    except Exception:
        raise ImageRefused("not an image (or a format that cannot be read)", "not_an_image") from None
    width, height = image.size
    if image.format not in IMAGE_FORMATS:
        raise ImageRefused(f"{image.format} files are not read; send PNG or JPEG", "not_an_image")
    if width * height > MAX_PIXELS:
        raise ImageRefused(f"{width}x{height} pixels is far too large for a screenshot", "too_many_pixels")
    if min(width, height) < MIN_SIDE or max(width, height) / min(width, height) > MAX_ASPECT:
        raise ImageRefused(f"{width}x{height} pixels is not the shape of a screenshot", "odd_shape")
    try:
        image.draft("RGB", _reading_size(width, height))  # JPEG: decode at reduced size directly
        image = ImageOps.exif_transpose(image)
        image = _flatten(image, Image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise ImageRefused("the picture is damaged or cut off", "damaged") from None
    target = _reading_size(image.width, image.height)
    if target != image.size:
        image = image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return image, (width, height)


def _reading_size(width: int, height: int) -> tuple[int, int]:
    """Short side at most OCR_SHORT_SIDE, and a long screenshot no longer than MAX_TILES tiles."""
    scale = min(1.0, OCR_SHORT_SIDE / min(width, height))
    short, long_ = min(width, height) * scale, max(width, height) * scale
    if long_ / short > TALL_RATIO:
        most = short * (TILE_RATIO * MAX_TILES - TILE_OVERLAP * (MAX_TILES - 1))
        if long_ > most:
            scale *= most / long_
    return max(1, round(width * scale)), max(1, round(height * scale))


def _flatten(image, Image):
    """RGB, with transparency laid over white (screenshots with alpha would turn black)."""
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _read_tiles(image, engine: Callable) -> list[TextBox]:
    """OCR the picture whole, or in overlapping tiles if it is a long screenshot.

    A line belongs to the tile whose half of the overlap holds its centre, so lines cut at a
    tile's edge are taken from the neighbour that sees them whole.
    """
    width, height = image.size
    if height <= TALL_RATIO * width:
        return list(engine(image))
    tile, overlap = round(TILE_RATIO * width), round(TILE_OVERLAP * width)
    boxes: list[TextBox] = []
    top = 0
    while True:
        bottom = min(height, top + tile)
        keep_from = 0 if top == 0 else top + overlap / 2
        keep_to = height if bottom == height else bottom - overlap / 2
        for box in engine(image.crop((0, top, width, bottom))):
            moved = replace(box, y0=box.y0 + top, y1=box.y1 + top)
            if keep_from <= moved.cy < keep_to:
                boxes.append(moved)
        if bottom == height:
            return boxes
        top = bottom - overlap


def _too_large(size: int) -> str:
    return f"the file has {size / 2**20:.1f} MiB; pictures up to {MAX_FILE_BYTES / 2**20:.0f} MiB are read"


# The engine: loaded once, on the first picture --------------------------------------------------
_engine_instance: Callable | None = None
_engine_lock = threading.Lock()
#: One picture at a time: the engine already uses every core, and two at once would double the memory.
_run_lock = threading.Lock()


def _engine() -> Callable:
    global _engine_instance
    with _engine_lock:
        if _engine_instance is None:
            try:
                from bot.adapters.ocr_engine import load_engine
            except ImportError as exc:
                raise OcrUnavailable(f"{INSTALL_HINT} ({exc})") from None
            _engine_instance = _serialised(load_engine())
    return _engine_instance


def _serialised(engine: Callable) -> Callable:
    def run(image):
        with _run_lock:
            return engine(image)

    return run


def ocr_available() -> bool:
    """True when the OCR extra is installed (checked without loading the models)."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("rapidocr_onnxruntime", "PIL"))


def _pillow():
    try:
        from PIL import Image, ImageOps
    except ImportError as exc:
        raise OcrUnavailable(f"{INSTALL_HINT} ({exc})") from None
    return Image, ImageOps


def image_path(line: str) -> Path | None:
    """The picture file a line typed in the console names, if it names one (drag-and-drop quotes ok)."""
    text = line.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    text = text.replace("\\ ", " ")
    if not text or "\n" in text or len(text) > 4096:
        return None
    path = Path(text).expanduser()
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return None
    try:
        return path if path.is_file() else None
    except OSError:
        return None


# Serving: a worker thread and a per-chat limit -------------------------------------------------
class OcrWorker:
    """Runs OCR in a background thread, so one slow picture never blocks other chats' messages."""

    def __init__(
        self, read: Callable[[bytes], ImageText] = read_image_bytes, *, threads: int = 1, timeout: float = 60.0
    ) -> None:
        self._read = read
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fanzha-ocr")
        self.timeout = timeout

    async def read(self, data: bytes) -> ImageText:
        """The picture's text; :class:`ImageRefused` also when reading takes longer than ``timeout``."""
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(self._pool, self._read, data), self.timeout)
        except TimeoutError:
            raise ImageRefused(f"reading took longer than {self.timeout:.0f} s", "too_slow") from None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class PictureLimiter:
    """At most ``per_minute`` pictures per chat in any 60 seconds (OCR costs a second of CPU each)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}

    def allow(self, chat_key: str, now: float) -> bool:
        if len(self._seen) > 10_000:
            self._seen = {k: q for k, q in self._seen.items() if q and now - q[-1] < 60}
        times = self._seen.setdefault(chat_key, deque())
        while times and now - times[0] >= 60:
            times.popleft()
        if len(times) >= self.per_minute:
            return False
        times.append(now)
        return True


Picture = bytes | Callable[[], Awaitable[bytes]]


class PictureReader:
    """What an adapter calls for a picture message: ``outcome = await pictures.respond(message, data)``."""

    def __init__(
        self,
        consultation: Consultation,
        *,
        per_minute: int = 4,
        worker: OcrWorker | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.consultation = consultation
        self.limiter = PictureLimiter(per_minute)
        self.worker = worker or OcrWorker()
        self.clock = clock

    async def respond(self, message: IncomingMessage, picture: Picture) -> Outcome:
        """Answer a picture: *message* describes the chat (its text may be a caption), *picture*
        is the image bytes or an async function that downloads them (called only if needed, so
        a group picture nobody asked about is never fetched)."""
        quiet = message.chat_kind == GROUP and not message.addressed
        if quiet and not self._group_watched(message):
            return Outcome("silent")
        if not self.limiter.allow(message.chat_key, self.clock()):
            return Outcome("silent") if quiet else self._say("picture_rate_limited", "rate_limited")
        try:
            data = picture if isinstance(picture, bytes | bytearray) else await picture()
            reading: ImageText | OcrUnavailable = await self.worker.read(bytes(data))
        except OcrUnavailable as exc:
            reading = exc
        return answer_picture(self.consultation, message, reading, self.clock())

    def _group_watched(self, message: IncomingMessage) -> bool:
        log = self.consultation.log
        return log is not None and log.autowarn_enabled(message.platform, message.chat_id)

    def _say(self, action: str, key: str) -> Outcome:
        return Outcome(action, [self.consultation.wording.one_block(key)])

    def close(self) -> None:
        self.worker.close()


def answer_picture(
    consultation: Consultation, message: IncomingMessage, reading: ImageText | OcrUnavailable, now: float
) -> Outcome:
    """The consultation's answer to a picture once read (or not): shared by every adapter and the console."""
    quiet = message.chat_kind == GROUP and not message.addressed
    caption = message.text.strip()
    unread = isinstance(reading, OcrUnavailable) or not reading.text.strip()
    if unread and caption:
        # Nothing read from the picture, but the words sent with it can be checked.
        return consultation.respond(replace(message, image_text=None, image_unreadable=False), now)
    if isinstance(reading, ImageRefused):
        if quiet:
            return Outcome("silent")
        key = "image_retry" if reading.code in ("download_failed", "too_slow") else "image_refused"
        return Outcome("image_refused", [consultation.wording.one_block(key)])
    if isinstance(reading, OcrUnavailable):
        return consultation.respond(replace(message, image_unreadable=True), now)
    text = f"{reading.text}\n{caption}" if caption else reading.text
    outcome = consultation.respond(replace(message, image_text=text), now)
    outcome.image_text = text
    return outcome
