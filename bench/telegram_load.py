"""The real ``fanzha telegram`` process under load, against the Bot API stand-in on 127.0.0.1.

Three measurements, each with a fresh bot process (so its peak memory is its own):

- capacity: N updates from many private chats queued at once, rate limiter off
  (``FANZHA_TELEGRAM_RATE_LIMITER=false``): replies a second, delivery-to-reply latency;
- latency at a fixed offered load (open loop, e.g. 200 updates a second): queued-to-reply
  median and p99, i.e. what a resident waits while the bot carries that load;
- limits, rate limiter on (the default): never over 30 messages a second overall, 1 a
  second per private chat or 20 a minute per group, and still every update answered.

The bot runs with ``FANZHA_BATCH_WINDOW_SECONDS=0`` and ``FANZHA_CHECKS_PER_MINUTE=100000``:
the messages are typed (never batched anyway), and the per-chat check limit (12 a minute by
default) would otherwise turn some answers into "please slow down" replies.
"""

from __future__ import annotations

import bisect
import itertools
import os
import resource
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

from bench.common import (
    child_env,
    combine,
    latency_summary,
    make_home,
    peak_command,
    proc_peak_mb,
    read_peak_mb,
    wait_with_usage,
)
from bench.standin import TimedBotAPI

LOAD_SETTINGS = {"batch_window_seconds": "0", "checks_per_minute": "100000"}
PRIVATE_BASE = 700_000_000
GROUP_BASE = -1_000_000_000_000


class BotProcess:
    """``python -m bot telegram`` pointed at *api*; ``stop()`` returns its peak RSS and CPU."""

    def __init__(self, api: TimedBotAPI, home: Path, *, rate_limiter: bool) -> None:
        env = child_env(
            home,
            telegram_token=api.token,
            telegram_rate_limiter="true" if rate_limiter else "false",
            **LOAD_SETTINGS,
        )
        self.log = (home / "bot.log").open("wb")
        self.peak_file = home / "peak"
        self.process = subprocess.Popen(
            peak_command(self.peak_file, ["-m", "bot", "telegram", "--base-url", api.url]),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        self.home = home
        api.wait_call("getUpdates", timeout=60)

    def stop(self) -> dict:
        peak_mb = proc_peak_mb(self.process.pid)
        self.process.send_signal(signal.SIGTERM)
        try:
            status, usage = wait_with_usage(self.process, 60)
        finally:
            self.log.close()
        if os.waitstatus_to_exitcode(status) != 0:
            tail = (self.home / "bot.log").read_text(encoding="utf-8", errors="replace")[-1500:]
            raise RuntimeError(f"fanzha telegram exited with {status}:\n{tail}")
        return {
            "peak_mb": max(peak_mb, read_peak_mb(self.peak_file) or 0),
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "sys_s": usage.ru_stime,
        }


def push_updates(api: TimedBotAPI, plan: list[tuple[int, str]], rate: float = 0.0) -> list[tuple[int, int, float]]:
    """Queue one update per (chat, text); *rate* > 0 spaces them (open loop). Returns
    (update_id, chat, queued_at) in order."""
    pushed = []
    started = time.monotonic()
    for n, (chat, text) in enumerate(plan):
        if rate:
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if chat < 0:
            message = api.message(chat, f"@{api.bot_user['username']} {text}", entities=[_mention(api)])
        else:
            message = api.message(chat, text)
        pushed.append((api.push({"message": message}), chat, time.monotonic()))
    return pushed


def _mention(api: TimedBotAPI) -> dict:
    return {"type": "mention", "offset": 0, "length": len(api.bot_user["username"]) + 1}


def match_replies(api: TimedBotAPI, pushed: list[tuple[int, int, float]], skip: dict[int, int]) -> dict:
    """Pair the k-th update of a chat with the k-th reply in it (one chat is answered in order).

    *skip* is how many sends each chat had before this phase. Returns latencies and whether
    every update got exactly one reply.
    """
    by_chat: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for update_id, chat, queued in pushed:
        by_chat[chat].append((update_id, queued))
    queued_to_reply, delivered_to_reply, replies_at = [], [], []
    exact = True
    for chat, updates in by_chat.items():
        sends = [at for at, _ in api.sent.get(chat, [])][skip.get(chat, 0) :]
        exact &= len(sends) == len(updates)
        for (update_id, queued), at in zip(updates, sends, strict=False):
            queued_to_reply.append(at - queued)
            delivered_to_reply.append(at - api.delivered_at.get(update_id, queued))
            replies_at.append(at)
    return {
        "exact": exact,
        "replies": len(replies_at),
        "queued_to_reply": queued_to_reply,
        "delivered_to_reply": delivered_to_reply,
        "last_reply_at": max(replies_at, default=time.monotonic()),
    }


def sent_so_far(api: TimedBotAPI) -> dict[int, int]:
    with api.progress:
        return {chat: len(sends) for chat, sends in api.sent.items()}


def load_plan(texts: list[str], chats: int, per_chat: int, first_chat: int) -> list[tuple[int, str]]:
    """*per_chat* rounds over *chats* private chats (interleaved, as real traffic is)."""
    plan = []
    for round_ in range(per_chat):
        for c in range(chats):
            plan.append((first_chat + c, texts[(round_ * chats + c) % len(texts)]))
    return plan


def settle(api: TimedBotAPI, expected: int, timeout: float) -> bool:
    """Wait for *expected* sends, then a moment more, to catch any reply sent twice."""
    done = api.wait_sent(expected, timeout)
    time.sleep(0.5)
    return done


def capacity_run(
    model_dir: Path, texts: list[str], *, chats: int, per_chat: int, paced_rate: float, paced_count: int
) -> dict:
    """One bot process, limiter off: a burst of chats x per_chat updates, then the same
    number again at *paced_rate* updates a second."""
    home = make_home("telegram-capacity", model_dir)
    n = chats * per_chat
    with TimedBotAPI() as api:
        bot = BotProcess(api, home, rate_limiter=False)
        own_cpu = _cpu_seconds()
        try:
            warm = push_updates(api, load_plan(texts, 5, 1, PRIVATE_BASE - 10))
            settle(api, len(warm), 60)
            skip = sent_so_far(api)
            base = api.sent_count
            pushed = push_updates(api, load_plan(texts, chats, per_chat, PRIVATE_BASE))
            settle(api, base + n, max(120.0, n / 20))
            burst = match_replies(api, pushed, skip)
            skip = sent_so_far(api)
            base = api.sent_count
            plan = load_plan(texts[::-1], chats, per_chat, PRIVATE_BASE)[:paced_count]
            paced = push_updates(api, plan, rate=paced_rate)
            settle(api, base + len(plan), max(60.0, len(plan) / 20))
            steady = match_replies(api, paced, skip)
        finally:
            resources = bot.stop()
            own_cpu = _cpu_seconds() - own_cpu
    burst_seconds = burst["last_reply_at"] - pushed[0][2]
    return {
        "updates": n,
        "chats": chats,
        "burst_replies_per_s": burst["replies"] / burst_seconds,
        "burst_seconds": burst_seconds,
        "burst_delivered_to_reply_ms": latency_summary(burst["delivered_to_reply"]),
        "burst_queued_to_reply_ms": latency_summary(burst["queued_to_reply"]),
        "burst_every_update_one_reply": burst["exact"],
        "paced_rate": paced_rate,
        "paced_updates": len(paced),
        "paced_replies_per_s": steady["replies"] / (steady["last_reply_at"] - paced[0][2]),
        "paced_queued_to_reply_ms": latency_summary(steady["queued_to_reply"]),
        "paced_every_update_one_reply": steady["exact"],
        "bot_peak_mb": resources["peak_mb"],
        "bot_cpu_s": resources["cpu_s"],
        "bot_sys_cpu_s": resources["sys_s"],
        "bot_cpu_ms_per_update": resources["cpu_s"] * 1000 / (n + len(paced) + 5),
        "standin_and_load_cpu_s": own_cpu,
    }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# Rate limits -----------------------------------------------------------------------------------
def max_in_window(times: list[float], window: float) -> int:
    """Most events inside any window of *window* seconds (sliding)."""
    best = 0
    for i, start in enumerate(times):
        best = max(best, bisect.bisect_left(times, start + window, lo=i) - i)
    return best


def limits_run(
    model_dir: Path, texts: list[str], *, private: int, per_private: int, groups: int, per_group: int
) -> dict:
    """Rate limiter on, stand-in enforcing Telegram's flood limits: are they kept, is all answered?"""
    home = make_home("telegram-limits", model_dir)
    plan = load_plan(texts, private, per_private, PRIVATE_BASE)
    for g in range(groups):
        plan += [(GROUP_BASE - g, texts[(g * per_group + k) % len(texts)]) for k in range(per_group)]
    with TimedBotAPI() as api:
        api.flood_limits(per_second=30, group_per_minute=20)
        bot = BotProcess(api, home, rate_limiter=True)
        try:
            started = time.monotonic()
            pushed = push_updates(api, plan)
            done = settle(api, len(plan), 30 + len(plan) / 5)
            seconds = time.monotonic() - started
            result = match_replies(api, pushed, {})
        finally:
            resources = bot.stop()
        sends = api.sends_in_order()
        with api._cond:
            chat_calls = sorted(c.at for c in api.calls if "chat_id" in c.params)
    times = [at for at, _ in sends]
    per_chat: dict[int, list[float]] = defaultdict(list)
    for at, chat in sends:
        per_chat[chat].append(at)
    private_gaps = [b - a for chat, ts in per_chat.items() if chat > 0 for a, b in itertools.pairwise(ts)]
    group_peak = max((max_in_window(ts, 60.0) for chat, ts in per_chat.items() if chat < 0), default=0)
    return {
        "updates": len(plan),
        "all_answered_once": bool(done and result["exact"]),
        "seconds": seconds,
        "replies_per_s": result["replies"] / seconds,
        "max_messages_in_any_1s": max_in_window(times, 1.0),
        "max_api_calls_with_chat_in_any_1s": max_in_window(chat_calls, 1.0),
        "min_gap_same_private_chat_s": min(private_gaps, default=float("nan")),
        "private_sends_under_1s_apart": sum(1 for g in private_gaps if g < 1.0),
        "max_group_messages_in_any_60s": group_peak,
        "flood_429_from_standin": api.refused_429,
        "queued_to_reply_ms": latency_summary(result["queued_to_reply"]),
        "bot_peak_mb": resources["peak_mb"],
    }


def run(model_dir: Path, texts: list[str], *, repeats: int, load: dict, limits: dict, note=print) -> dict:
    note(
        f"  telegram: {repeats}x {load['chats'] * load['per_chat']:,} updates from {load['chats']} chats "
        f"(burst), then {load['paced_count']:,} at {load['paced_rate']:.0f}/s, rate limiter off"
    )
    capacity = combine([capacity_run(model_dir, texts, **load) for _ in range(repeats)])
    note(f"  telegram: rate limiter on, {limits}")
    checked = limits_run(model_dir, texts, **limits)
    return {
        "settings": {f"FANZHA_{k.upper()}": v for k, v in LOAD_SETTINGS.items()},
        "capacity": capacity,
        "limits": checked,
    }
