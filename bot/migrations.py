"""The database schema, step by step. The schema exists only here.

Each migration runs in its own transaction together with the version bump, so an
interrupted migration leaves the previous version intact and is simply run again. Never edit
a released step: append a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]


def _v1(conn: sqlite3.Connection) -> None:
    conn.executescript(
        """
        CREATE TABLE chats (
            platform TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'private',
            autowarn INTEGER NOT NULL DEFAULT 0,
            subscribed INTEGER NOT NULL DEFAULT 0,
            tip_time TEXT,
            tip_zone TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (platform, chat_id)
        );
        CREATE TABLE consultations (
            id INTEGER PRIMARY KEY,
            created_at TEXT NOT NULL,
            day TEXT NOT NULL,
            platform TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            chat_kind TEXT NOT NULL,
            label TEXT NOT NULL,
            category TEXT NOT NULL,
            is_fraud INTEGER NOT NULL,
            confidence REAL NOT NULL,
            risk TEXT NOT NULL,
            model_version TEXT NOT NULL,
            text_hash TEXT NOT NULL,
            entity_kinds TEXT NOT NULL DEFAULT '',
            red_flags TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX consultations_day ON consultations (day);
        CREATE INDEX consultations_chat ON consultations (platform, chat_id);
        CREATE INDEX consultations_hash ON consultations (text_hash);
        CREATE TABLE feedback (
            id INTEGER PRIMARY KEY,
            consultation_id INTEGER NOT NULL UNIQUE
                REFERENCES consultations(id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            helpful INTEGER NOT NULL,
            corrected_label TEXT
        );
        CREATE TABLE review_items (
            id INTEGER PRIMARY KEY,
            consultation_id INTEGER UNIQUE REFERENCES consultations(id) ON DELETE CASCADE,
            platform TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            text TEXT NOT NULL,
            model_label TEXT NOT NULL,
            suggested_label TEXT,
            final_label TEXT,
            status TEXT NOT NULL DEFAULT 'pending',
            reviewed_at TEXT
        );
        CREATE TABLE tip_sends (
            platform TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            day TEXT NOT NULL,
            tip_id TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (platform, chat_id, day)
        );
        CREATE INDEX tip_sends_tip ON tip_sends (platform, chat_id, tip_id);
        CREATE TABLE wecom_hooks (
            name TEXT PRIMARY KEY,
            hook_key TEXT NOT NULL,
            tip_time TEXT,
            created_at TEXT NOT NULL
        );
        CREATE TABLE wechat_messages (
            msg_id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL
        );
        """
    )


MIGRATIONS: list[Migration] = [_v1]
LATEST = len(MIGRATIONS)


def current_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='schema_version'").fetchone()
    if row is None:
        return 0
    version = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(version[0]) if version else 0


def migrate(conn: sqlite3.Connection, fail_after: int | None = None) -> int:
    """Bring the schema up to LATEST; returns the version reached.

    *fail_after* (tests only) raises inside the transaction of that step, to prove an
    interrupted migration leaves no half-written schema.
    """
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    version = current_version(conn)
    for number in range(version + 1, LATEST + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # executescript would commit; run the step's statements inside our transaction.
            _run_in_transaction(conn, MIGRATIONS[number - 1])
            if fail_after == number:
                raise RuntimeError(f"simulated failure in migration {number}")
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        version = number
    return version


class _TransactionalConnection:
    """Runs ``executescript`` as separate statements so they stay inside the open transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def executescript(self, script: str) -> None:
        for statement in _statements(script):
            self._conn.execute(statement)


def _statements(script: str) -> list[str]:
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                out.append(current.strip())
            current = ""
    return out


def _run_in_transaction(conn: sqlite3.Connection, step: Migration) -> None:
    step(_TransactionalConnection(conn))  # type: ignore[arg-type]
