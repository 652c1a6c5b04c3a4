"""``fanzha chat``: the same consultation core in a terminal, offline, no token needed."""

from __future__ import annotations

import contextlib
import os
import sys
import time

from bot.consultation import Consultation
from bot.messages import Block, IncomingMessage, Outcome, Reply
from bot.ocr import OcrUnavailable, answer_picture, image_path, read_image_file

_COLOURS = {"high": "\033[1;31m", "medium": "\033[1;33m", "low": "\033[1;32m", "none": "\033[1;32m"}
_BOLD, _DIM, _RESET = "\033[1m", "\033[2m", "\033[0m"


def _use_colour(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def format_reply(reply: Reply, outcome: Outcome, colour: bool) -> str:
    """The reply as terminal text; banners coloured by risk when the terminal supports it."""
    risk = outcome.verdict.risk if outcome.verdict else "none"
    lines: list[str] = []
    for block in reply.blocks:
        text = f"• {block.text}" if block.style == "item" else block.text
        if colour and block.style == "banner":
            text = f"{_COLOURS.get(risk, _BOLD)}{text}{_RESET}"
        elif colour and block.style == "heading":
            text = f"{_BOLD}{text}{_RESET}"
        elif colour and block.style in ("note", "quote"):
            text = f"{_DIM}{text}{_RESET}"
        lines.append(text)
    for n, option in enumerate(reply.quick_replies, 1):
        lines.append(f"  [{n}] {option.label}")
    return "\n".join(lines)


def _setup_history(path) -> None:
    try:
        import readline
    except ImportError:  # pragma: no cover - Windows without pyreadline
        return
    with contextlib.suppress(OSError):
        readline.read_history_file(path)
    readline.set_history_length(500)
    import atexit

    def save() -> None:
        with contextlib.suppress(OSError):
            readline.write_history_file(path)

    atexit.register(save)


def read_picture(consultation: Consultation, path) -> Outcome:
    """A screenshot's path typed (or dropped) into the terminal: read it and answer like a picture message."""
    message = IncomingMessage("", chat_id="local", platform="console")
    try:
        reading = read_image_file(path)
    except OcrUnavailable as exc:  # also ImageRefused: the core's kind reply, no traceback
        reading = exc
    return answer_picture(consultation, message, reading, time.monotonic())


def run_console(consultation: Consultation, settings) -> None:
    """Read messages from the terminal until /quit or end of input."""
    out = sys.stdout
    colour = _use_colour(out)
    interactive = sys.stdin.isatty()
    if interactive:
        # History holds what the user typed on this machine only, like a shell's.
        _setup_history(str(settings.ensure_home() / "chat_history"))
    wording = consultation.wording
    print(f"{wording.say('greeting')}\n{wording.say('console_hint')}", flush=True)
    help_reply = wording.one_block("help")
    pending_options: tuple = ()
    while True:
        try:
            line = input("\n你：" if interactive else "\n你：\n")
        except EOFError:
            break
        except KeyboardInterrupt:
            print()
            break
        command = line.strip().lower()
        if command in ("/quit", "/exit", "/q"):
            break
        if command in ("/help", "/h", "?"):
            print(format_reply(help_reply, Outcome("help"), colour), flush=True)
            continue
        quick = None
        if pending_options and command in {str(n) for n in range(1, len(pending_options) + 1)}:
            quick = pending_options[int(command) - 1].payload
        picture = image_path(line) if quick is None else None
        if picture is not None:
            outcome = read_picture(consultation, picture)
        else:
            message = IncomingMessage(line, chat_id="local", platform="console", quick_reply=quick)
            outcome = consultation.respond(message, time.monotonic())
        pending_options = ()
        print("助手：", flush=True)
        for reply in outcome.replies or [Reply((Block("……"),))]:
            print(format_reply(reply, outcome, colour), flush=True)
            pending_options = reply.quick_replies or pending_options
    print(wording.say("goodbye"), flush=True)
