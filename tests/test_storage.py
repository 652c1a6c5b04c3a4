"""Storage against real SQLite files: privacy, forget, purge, concurrency and faults."""

from __future__ import annotations

import multiprocessing
import sqlite3
from datetime import timedelta

import pytest

from bot.migrations import LATEST, migrate
from bot.storage import Store, StoreError, utcnow
from classifier.verdict import Verdict


def verdict(label="refund_scam"):
    return Verdict(label, label, label != "benign", 0.9, 0.9, "high", {label: 0.9})


def record(store, chat="42", **kw):
    return store.record_consultation(
        platform="telegram", chat_id=chat, chat_kind="private", verdict=verdict(), text_hash="h" * 32, **kw
    )


def test_consultations_store_no_text(tmp_path):
    store = Store(tmp_path / "f.db")
    cid = record(store)
    row = store.consultation(cid)
    assert row["label"] == "refund_scam" and row["text_hash"] == "h" * 32
    assert "text" not in row
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_review_text_only_with_consent_and_forget_deletes_everything(tmp_path):
    store = Store(tmp_path / "f.db")
    cid = record(store)
    assert store.record_feedback(cid, helpful=False, corrected_label="safe_account")
    assert store.keep_for_review(cid, "原文", "safe_account")
    store.subscribe("telegram", "42", "private", "09:00", "Asia/Shanghai")
    counts = store.forget_chat("telegram", "42")
    assert counts == {"feedback": 1, "review_items": 1, "consultations": 1, "tip_sends": 0, "chats": 1}
    assert store.consultation(cid) is None and store.pending_reviews() == []


def test_forgetting_a_wecom_group_forgets_its_robot_key(tmp_path):
    store = Store(tmp_path / "f.db")
    store.add_wecom_hook("三号楼", "k-123", "09:00", "Asia/Shanghai")
    counts = store.forget_chat("wecom", "三号楼")
    assert counts["wecom_hooks"] == 1 and counts["chats"] == 1
    assert store.wecom_hook_key("三号楼") is None and store.wecom_hooks() == []


def test_purge_removes_old_rows_only(tmp_path):
    store = Store(tmp_path / "f.db", retention_days=30)
    old = record(store, at=utcnow() - timedelta(days=40))
    new = record(store)
    store.keep_for_review(old, "旧消息", None)
    store.conn.execute("UPDATE review_items SET created_at = ?", ((utcnow() - timedelta(days=40)).isoformat(),))
    assert store.purge()["consultations"] == 1
    assert store.consultation(old) is None and store.consultation(new) is not None
    assert store.pending_reviews() == []


def _writer(path, n):
    store = Store(path)
    for _ in range(n):
        record(store, chat="w")


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "f.db"
    Store(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, 100)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    assert Store(path).conn.execute("SELECT count(*) FROM consultations").fetchone()[0] == 300


def test_interrupted_migration_leaves_no_half_schema(tmp_path):
    conn = sqlite3.connect(tmp_path / "f.db", isolation_level=None)
    with pytest.raises(RuntimeError):
        migrate(conn, fail_after=1)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "consultations" not in tables
    assert migrate(conn) == LATEST
    conn.close()
    assert Store(tmp_path / "f.db").consultation(1) is None


def test_corrupt_newer_and_read_only_databases_give_clear_errors(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="damaged or not a fanzha database"):
        Store(bad)
    newer = tmp_path / "newer.db"
    Store(newer).conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError, match="newer fanzha"):
        Store(newer)


def test_read_only_database(tmp_path):
    import os

    path = tmp_path / "ro.db"
    Store(path).close()
    for p in tmp_path.iterdir():
        os.chmod(p, 0o444)
    os.chmod(tmp_path, 0o555)
    try:
        if os.geteuid() == 0:
            pytest.skip("root ignores file permissions")
        with pytest.raises(StoreError, match="read-only"):
            record(Store(path))
    finally:
        os.chmod(tmp_path, 0o755)


def test_locked_database_gives_a_clear_error(tmp_path, monkeypatch):
    import bot.storage as storage

    path = tmp_path / "f.db"
    Store(path).close()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(storage, "BUSY_TIMEOUT_MS", 200)
    try:
        with pytest.raises(StoreError, match="locked"):
            store = Store(path)
            record(store)
    finally:
        blocker.execute("ROLLBACK")


def test_tip_send_is_claimed_once(tmp_path):
    store = Store(tmp_path / "f.db")
    assert store.claim_tip_send("telegram", "1", "2026-12-01", "t1")
    assert not store.claim_tip_send("telegram", "1", "2026-12-01", "t1")
    store.finish_tip_send("telegram", "1", "2026-12-01", ok=False)
    assert store.claim_tip_send("telegram", "1", "2026-12-01", "t1")  # a failed send is retried
    store.finish_tip_send("telegram", "1", "2026-12-01", ok=True)
    assert not store.claim_tip_send("telegram", "1", "2026-12-01", "t1")
    assert store.tip_history("telegram", "1") == ["t1"]


def test_group_migration_moves_settings(tmp_path):
    store = Store(tmp_path / "f.db")
    store.set_autowarn("telegram", "-1", True)
    store.subscribe("telegram", "-1", "group", "08:30", "Asia/Shanghai")
    store.move_chat("telegram", "-1", "-1001")
    assert store.chat("telegram", "-1") is None
    moved = store.chat("telegram", "-1001")
    assert moved["autowarn"] == 1 and moved["tip_time"] == "08:30"


def test_full_disk_gives_a_clear_error_and_no_half_write(tmp_path):
    store = Store(tmp_path / "f.db")
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count = {pages + 1}")
    before = store.conn.execute("SELECT count(*) FROM consultations").fetchone()[0]
    with pytest.raises(StoreError, match="full"):
        for _ in range(500):
            store.keep_for_review(record(store), "长" * 5000, None)
    after_consultations = store.conn.execute("SELECT count(*) FROM consultations").fetchone()[0]
    after_reviews = store.conn.execute("SELECT count(*) FROM review_items").fetchone()[0]
    assert after_consultations >= before and after_reviews <= after_consultations
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_wal_with_one_sync_per_checkpoint_not_per_commit(tmp_path):
    store = Store(tmp_path / "f.db")
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    record(store)
    store.close()
    assert Store(tmp_path / "f.db").query("SELECT count(*) AS n FROM consultations")[0]["n"] == 1
