"""Shared fixtures: one trained model per test run (cached across runs, rebuilt when stale)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODEL_CACHE = ROOT / ".cache" / "test-model"


@pytest.fixture(scope="session")
def knowledge():
    from classifier.knowledge import load_knowledge

    return load_knowledge()


@pytest.fixture(scope="session")
def classifier(knowledge):
    from classifier.engine import Classifier

    return Classifier.open(MODEL_CACHE, knowledge=knowledge, backend="rjieba")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh FANZHA_HOME whose model is the session's cached one (no retraining)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("FANZHA_HOME", str(home))
    monkeypatch.delenv("FANZHA_DB", raising=False)
    (home / "model").symlink_to(MODEL_CACHE, target_is_directory=True)
    return home


@pytest.fixture
def fanzha_env(home, classifier):
    """Environment for running the `fanzha` command as a user would."""
    env = dict(os.environ)
    env["FANZHA_HOME"] = str(home)
    env["PYTHONIOENCODING"] = "utf-8"
    env.pop("FANZHA_DB", None)
    return env


FANZHA = [sys.executable, "-m", "bot"]


@pytest.fixture
def api():
    """The Telegram Bot API stand-in on 127.0.0.1 (tests/fakes/bot_api.py)."""
    from fakes import FakeBotAPI

    with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
def start_bot(api, home, classifier):
    """Start the real PTB bot against ``api``: ``start_bot(read_picture=..., FANZHA_X=...)``."""
    from fakes.telegram_bot import BotInThread, telegram_settings

    bots = []

    def start(read_picture=None, **env):
        settings = telegram_settings(api, home, **env)
        bots.append(BotInThread.start(settings, classifier, api, tip_tick=False, read_picture=read_picture))
        return bots[-1]

    yield start
    for bot in bots:
        bot.stop()
