"""One SQLite database (via sqlite-utils) that every adapter and CLI command shares.

Privacy by default: consultations keep the label, scores, model version, entity kinds and a
keyed hash of the normalised text, never the text. Message text is stored only as a review
item, after the person said yes. WAL mode and a busy timeout let the bot and a CLI command
use the file at the same time; writes that belong together share one transaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlite_utils

from bot.errors import StoreError
from bot.migrations import LATEST, current_version, migrate
from classifier.verdict import Verdict

BUSY_TIMEOUT_MS = 10_000


def _explain(exc: sqlite3.Error, path: Path) -> StoreError:
    text = str(exc).lower()
    if "not a database" in text or "malformed" in text:
        return StoreError(
            f"{path} is damaged or not a fanzha database. Restore a backup or point FANZHA_DB at a new file."
        )
    if "readonly" in text or "read-only" in text:
        return StoreError(f"{path} is read-only. Give this user write access to the file and its folder.")
    if "disk is full" in text or "database or disk is full" in text:
        return StoreError(f"the disk holding {path} is full. Free some space and try again; nothing was half-written.")
    if "locked" in text or "busy" in text:
        return StoreError(f"{path} is locked by another program for too long. Try again in a moment.")
    if "unable to open" in text:
        return StoreError(f"cannot open {path}: check that the folder exists and is writable.")
    return StoreError(f"database error in {path}: {exc}")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Store:
    """Storage verbs: record_consultation, forget_chat, subscribe, claim_tip_send..."""

    def __init__(self, path: Path, *, timezone: str = "Asia/Shanghai", retention_days: int = 180) -> None:
        self.path = Path(path)
        self.zone = ZoneInfo(timezone)
        self.retention_days = retention_days
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
            )
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode and str(mode[0]).lower() != "wal" and not self.path.exists():
                raise StoreError(f"cannot use WAL mode on {self.path}")
            # With WAL, NORMAL syncs at checkpoints instead of every commit (one fsync per
            # consultation was a visible share of the bot's time). A crashed process loses
            # nothing; only a power cut can undo the last commits, never corrupt the file.
            if mode and str(mode[0]).lower() == "wal":
                conn.execute("PRAGMA synchronous = NORMAL")
            version = current_version(conn)
            if version > LATEST:
                raise StoreError(
                    f"{self.path} was written by a newer fanzha (schema {version}, this one knows {LATEST}). "
                    "Upgrade fanzha or use another FANZHA_DB."
                )
            migrate(conn)
        except sqlite3.Error as exc:
            raise _explain(exc, self.path) from None
        except OSError as exc:
            raise StoreError(f"cannot open {self.path}: {exc.strerror or exc}") from None
        self.conn = conn
        self.db = sqlite_utils.Database(conn)

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of writes; sqlite errors become StoreError."""
        with self._lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self.conn
                except BaseException:
                    self.conn.execute("ROLLBACK")
                    raise
                self.conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise _explain(exc, self.path) from None

    def query(self, sql: str, params: tuple | dict = ()) -> list[dict]:
        with self._lock:
            try:
                return list(self.db.query(sql, params))
            except sqlite3.Error as exc:
                raise _explain(exc, self.path) from None

    def day_of(self, moment: datetime) -> str:
        return moment.astimezone(self.zone).date().isoformat()

    # Chats --------------------------------------------------------------------------------
    def _ensure_chat(self, conn: sqlite3.Connection, platform: str, chat_id: str, kind: str, now: str) -> None:
        conn.execute(
            "INSERT INTO chats (platform, chat_id, kind, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (platform, chat_id) DO NOTHING",
            (platform, chat_id, kind, now, now),
        )

    def chat(self, platform: str, chat_id: str) -> dict | None:
        rows = self.query("SELECT * FROM chats WHERE platform = ? AND chat_id = ?", (platform, chat_id))
        return rows[0] if rows else None

    def autowarn_enabled(self, platform: str, chat_id: str) -> bool:
        chat = self.chat(platform, chat_id)
        return bool(chat and chat["autowarn"])

    def set_autowarn(self, platform: str, chat_id: str, on: bool, kind: str = "group") -> None:
        now = utcnow().isoformat()
        with self.transaction() as conn:
            self._ensure_chat(conn, platform, chat_id, kind, now)
            conn.execute(
                "UPDATE chats SET autowarn = ?, updated_at = ? WHERE platform = ? AND chat_id = ?",
                (int(on), now, platform, chat_id),
            )

    def move_chat(self, platform: str, old_id: str, new_id: str) -> None:
        """A Telegram group became a supergroup: everything follows the new id."""
        with self.transaction() as conn:
            exists = conn.execute(
                "SELECT 1 FROM chats WHERE platform = ? AND chat_id = ?", (platform, new_id)
            ).fetchone()
            if exists:
                conn.execute("DELETE FROM chats WHERE platform = ? AND chat_id = ?", (platform, old_id))
            else:
                conn.execute(
                    "UPDATE chats SET chat_id = ?, kind = 'group' WHERE platform = ? AND chat_id = ?",
                    (new_id, platform, old_id),
                )
            for table in ("consultations", "tip_sends", "review_items"):
                conn.execute(
                    f"UPDATE OR IGNORE {table} SET chat_id = ? WHERE platform = ? AND chat_id = ?",
                    (new_id, platform, old_id),
                )

    # Consultations ------------------------------------------------------------------------
    def record_consultation(
        self,
        *,
        platform: str,
        chat_id: str,
        chat_kind: str,
        verdict: Verdict,
        text_hash: str,
        at: datetime | None = None,
    ) -> int:
        moment = at or utcnow()
        row = {
            "created_at": moment.isoformat(),
            "day": self.day_of(moment),
            "platform": platform,
            "chat_id": chat_id,
            "chat_kind": chat_kind,
            "label": verdict.label,
            "category": verdict.category,
            "is_fraud": int(verdict.is_fraud),
            "confidence": round(verdict.confidence, 4),
            "risk": verdict.risk,
            "model_version": verdict.model_version,
            "text_hash": text_hash,
            "entity_kinds": ",".join(sorted({e.kind for e in verdict.entities})),
            "red_flags": ",".join(r.name for r in verdict.reasons),
        }
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self.transaction() as conn:
            self._ensure_chat(conn, platform, chat_id, chat_kind, row["created_at"])
            cursor = conn.execute(f"INSERT INTO consultations ({columns}) VALUES ({marks})", tuple(row.values()))
            return int(cursor.lastrowid)

    def consultation(self, consultation_id: int) -> dict | None:
        rows = self.query("SELECT * FROM consultations WHERE id = ?", (consultation_id,))
        return rows[0] if rows else None

    # Feedback and review -----------------------------------------------------------------
    def record_feedback(self, consultation_id: int, helpful: bool, corrected_label: str | None = None) -> bool:
        """Store (or update) feedback on a consultation; False if it no longer exists."""
        now = utcnow().isoformat()
        with self.transaction() as conn:
            if not conn.execute("SELECT 1 FROM consultations WHERE id = ?", (consultation_id,)).fetchone():
                return False
            conn.execute(
                "INSERT INTO feedback (consultation_id, created_at, helpful, corrected_label) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (consultation_id) DO UPDATE SET helpful = excluded.helpful, "
                "corrected_label = COALESCE(excluded.corrected_label, feedback.corrected_label)",
                (consultation_id, now, int(helpful), corrected_label),
            )
            return True

    def keep_for_review(self, consultation_id: int, text: str, suggested_label: str | None) -> bool:
        """Keep the message text for review: call only after the person agreed."""
        now = utcnow().isoformat()
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT platform, chat_id, label FROM consultations WHERE id = ?", (consultation_id,)
            ).fetchone()
            if row is None:
                return False
            conn.execute(
                "INSERT INTO review_items (consultation_id, platform, chat_id, created_at, text, model_label, "
                "suggested_label) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (consultation_id) DO UPDATE SET "
                "text = excluded.text, suggested_label = excluded.suggested_label",
                (consultation_id, row[0], row[1], now, text, row[2], suggested_label),
            )
            return True

    def pending_reviews(self) -> list[dict]:
        return self.query("SELECT * FROM review_items WHERE status = 'pending' ORDER BY id")

    def resolve_review(self, item_id: int, final_label: str | None) -> None:
        """Confirm with a label, or reject (None) a review item."""
        status = "confirmed" if final_label else "rejected"
        with self.transaction() as conn:
            conn.execute(
                "UPDATE review_items SET final_label = ?, status = ?, reviewed_at = ? WHERE id = ?",
                (final_label, status, utcnow().isoformat(), item_id),
            )

    def export_reviewed(self, path: Path) -> int:
        """Write confirmed items as JSONL training data; returns how many."""
        rows = self.query("SELECT text, final_label FROM review_items WHERE status = 'confirmed' ORDER BY id")
        tmp = path.with_suffix(path.suffix + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps({"text": row["text"], "label": row["final_label"]}, ensure_ascii=False) + "\n")
        tmp.replace(path)
        return len(rows)

    # Forgetting and retention -------------------------------------------------------------
    def forget_chat(self, platform: str, chat_id: str) -> dict[str, int]:
        """Delete everything stored about a chat or person; returns rows deleted per table."""
        counts: dict[str, int] = {}
        with self.transaction() as conn:
            ids = "SELECT id FROM consultations WHERE platform = ? AND chat_id = ?"
            counts["feedback"] = conn.execute(
                f"DELETE FROM feedback WHERE consultation_id IN ({ids})", (platform, chat_id)
            ).rowcount
            for table in ("review_items", "consultations", "tip_sends", "chats"):
                counts[table] = conn.execute(
                    f"DELETE FROM {table} WHERE platform = ? AND chat_id = ?", (platform, chat_id)
                ).rowcount
            if platform == "wecom":  # a WeCom group is known by its robot: forget the key too
                counts["wecom_hooks"] = conn.execute("DELETE FROM wecom_hooks WHERE name = ?", (chat_id,)).rowcount
        return counts

    def purge(self, now: datetime | None = None) -> dict[str, int]:
        """Delete consultations and review items older than the retention period."""
        cutoff = ((now or utcnow()) - timedelta(days=self.retention_days)).isoformat()
        with self.transaction() as conn:
            old = "SELECT id FROM consultations WHERE created_at < ?"
            feedback = conn.execute(f"DELETE FROM feedback WHERE consultation_id IN ({old})", (cutoff,)).rowcount
            reviews = conn.execute("DELETE FROM review_items WHERE created_at < ?", (cutoff,)).rowcount
            consultations = conn.execute("DELETE FROM consultations WHERE created_at < ?", (cutoff,)).rowcount
            seen_cutoff = ((now or utcnow()) - timedelta(days=2)).isoformat()
            conn.execute("DELETE FROM wechat_messages WHERE created_at < ?", (seen_cutoff,))
        return {"consultations": consultations, "review_items": reviews, "feedback": feedback}

    # Subscriptions ------------------------------------------------------------------------
    def subscribe(self, platform: str, chat_id: str, kind: str, tip_time: str, zone: str) -> None:
        now = utcnow().isoformat()
        with self.transaction() as conn:
            self._ensure_chat(conn, platform, chat_id, kind, now)
            conn.execute(
                "UPDATE chats SET subscribed = 1, tip_time = ?, tip_zone = ?, kind = ?, updated_at = ? "
                "WHERE platform = ? AND chat_id = ?",
                (tip_time, zone, kind, now, platform, chat_id),
            )

    def unsubscribe(self, platform: str, chat_id: str) -> bool:
        with self.transaction() as conn:
            return (
                conn.execute(
                    "UPDATE chats SET subscribed = 0, updated_at = ? "
                    "WHERE platform = ? AND chat_id = ? AND subscribed = 1",
                    (utcnow().isoformat(), platform, chat_id),
                ).rowcount
                > 0
            )

    def subscriptions(self, platform: str | None = None) -> list[dict]:
        if platform:
            return self.query(
                "SELECT * FROM chats WHERE subscribed = 1 AND platform = ? ORDER BY chat_id", (platform,)
            )
        return self.query("SELECT * FROM chats WHERE subscribed = 1 ORDER BY platform, chat_id")

    # Tip sends: idempotent by (platform, chat, day) ----------------------------------------
    def claim_tip_send(self, platform: str, chat_id: str, day: str, tip_id: str, max_attempts: int = 5) -> bool:
        """Reserve today's send for a chat. False if it was already sent (or is in flight
        in another process, or failed too often)."""
        now = utcnow().isoformat()
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT status, attempts FROM tip_sends WHERE platform = ? AND chat_id = ? AND day = ?",
                (platform, chat_id, day),
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO tip_sends (platform, chat_id, day, tip_id, status, attempts, updated_at) "
                    "VALUES (?, ?, ?, ?, 'sending', 1, ?)",
                    (platform, chat_id, day, tip_id, now),
                )
                return True
            status, attempts = row
            if status == "failed" and attempts < max_attempts:
                conn.execute(
                    "UPDATE tip_sends SET status = 'sending', attempts = attempts + 1, updated_at = ? "
                    "WHERE platform = ? AND chat_id = ? AND day = ?",
                    (now, platform, chat_id, day),
                )
                return True
            return False

    def finish_tip_send(self, platform: str, chat_id: str, day: str, ok: bool) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE tip_sends SET status = ?, updated_at = ? WHERE platform = ? AND chat_id = ? AND day = ?",
                ("sent" if ok else "failed", utcnow().isoformat(), platform, chat_id, day),
            )

    def release_stale_sends(self, older_than: timedelta = timedelta(minutes=10)) -> int:
        """Sends left 'sending' by a crash become 'failed' so they are retried once."""
        cutoff = (utcnow() - older_than).isoformat()
        with self.transaction() as conn:
            return conn.execute(
                "UPDATE tip_sends SET status = 'failed' WHERE status = 'sending' AND updated_at < ?", (cutoff,)
            ).rowcount

    def tip_history(self, platform: str, chat_id: str) -> list[str]:
        """Tip ids this chat has been sent (or is being sent), oldest first."""
        rows = self.query(
            "SELECT tip_id FROM tip_sends WHERE platform = ? AND chat_id = ? AND status != 'failed' ORDER BY day",
            (platform, chat_id),
        )
        return [r["tip_id"] for r in rows]

    def tip_send(self, platform: str, chat_id: str, day: str) -> dict | None:
        rows = self.query(
            "SELECT * FROM tip_sends WHERE platform = ? AND chat_id = ? AND day = ?", (platform, chat_id, day)
        )
        return rows[0] if rows else None

    def last_tip_days(self) -> dict[tuple[str, str], str]:
        """{(platform, chat_id): the last day a tip was delivered} for every chat ever sent one."""
        rows = self.query(
            "SELECT platform, chat_id, MAX(day) AS day FROM tip_sends WHERE status = 'sent' GROUP BY platform, chat_id"
        )
        return {(r["platform"], r["chat_id"]): r["day"] for r in rows}

    # WeCom group robots --------------------------------------------------------------------
    def add_wecom_hook(self, name: str, key: str, tip_time: str, zone: str) -> None:
        """Register a WeCom group robot; it is subscribed to tips as chat ``wecom:<name>``."""
        now = utcnow().isoformat()
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO wecom_hooks (name, hook_key, tip_time, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET hook_key = excluded.hook_key, tip_time = excluded.tip_time",
                (name, key, tip_time, now),
            )
            self._ensure_chat(conn, "wecom", name, "group", now)
            conn.execute(
                "UPDATE chats SET subscribed = 1, tip_time = ?, tip_zone = ?, updated_at = ? "
                "WHERE platform = 'wecom' AND chat_id = ?",
                (tip_time, zone, now, name),
            )

    def remove_wecom_hook(self, name: str) -> bool:
        with self.transaction() as conn:
            conn.execute("DELETE FROM chats WHERE platform = 'wecom' AND chat_id = ?", (name,))
            return conn.execute("DELETE FROM wecom_hooks WHERE name = ?", (name,)).rowcount > 0

    def wecom_hook_key(self, name: str) -> str | None:
        rows = self.query("SELECT hook_key FROM wecom_hooks WHERE name = ?", (name,))
        return rows[0]["hook_key"] if rows else None

    def wecom_hooks(self) -> list[dict]:
        return self.query("SELECT * FROM wecom_hooks ORDER BY name")

    # WeChat retries ------------------------------------------------------------------------
    def first_sight_of_message(self, msg_id: str) -> bool:
        """True the first time a WeChat MsgId is seen; retries of it return False."""
        with self.transaction() as conn:
            return (
                conn.execute(
                    "INSERT OR IGNORE INTO wechat_messages (msg_id, created_at) VALUES (?, ?)",
                    (msg_id, utcnow().isoformat()),
                ).rowcount
                > 0
            )


def open_store(settings) -> Store:
    """The store at settings.db, migrated, with old data purged."""
    store = Store(settings.db, timezone=settings.timezone, retention_days=settings.retention_days)
    store.purge()
    return store
