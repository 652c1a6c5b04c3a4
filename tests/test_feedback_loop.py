"""Review, stats, export and forget through the real CLI and a real database file."""

from __future__ import annotations

import json
import subprocess

from conftest import FANZHA

from bot.storage import Store
from classifier.verdict import Verdict


def seed(db_path, n=3):
    store = Store(db_path)
    ids = []
    for i in range(n):
        v = Verdict("refund_scam", "refund_scam", True, 0.9, 0.9, "high", {}, [])
        ids.append(store.record_consultation(platform="telegram", chat_id=str(i % 2), chat_kind="private",
                                             verdict=v, text_hash="same" * 8))
    store.record_feedback(ids[0], helpful=False, corrected_label="safe_account")
    store.keep_for_review(ids[0], "我是公安局的，你涉嫌洗钱，转到安全账户", "safe_account")
    store.record_feedback(ids[1], helpful=True)
    store.close()
    return ids


def run(args, env, stdin=""):
    return subprocess.run([*FANZHA, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60)


def test_review_confirms_and_exports_for_training(fanzha_env, home):
    seed(home / "fanzha.db")
    result = run(["review"], fanzha_env, stdin="\n")
    assert result.returncode == 0, result.stderr
    assert "confirmed 1" in result.stdout
    exported = [json.loads(line) for line in (home / "reviewed.jsonl").read_text(encoding="utf-8").splitlines()]
    assert exported == [{"text": "我是公安局的，你涉嫌洗钱，转到安全账户", "label": "safe_account"}]


def test_review_can_correct_or_reject(fanzha_env, home):
    seed(home / "fanzha.db")
    result = run(["review"], fanzha_env, stdin="r\n")
    assert "rejected 1" in result.stdout
    assert (home / "reviewed.jsonl").read_text() == ""


def test_stats_table_json_and_plot(fanzha_env, home, tmp_path):
    seed(home / "fanzha.db")
    data = json.loads(run(["stats", "--json", "--days", "7"], fanzha_env).stdout)
    assert data["consultations"] == 3 and data["flagged"] == 3
    assert data["per_category"] == {"refund_scam": 3}
    assert data["feedback"] == {"answers": 2, "helpful": 1, "accuracy": 0.5}
    assert data["repeated_messages"][0]["count"] == 3
    plot = tmp_path / "chart.png"
    table = run(["stats", "--plot", str(plot)], fanzha_env)
    assert "咨询 3 次" in table.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_export_has_no_personal_data(fanzha_env, home):
    seed(home / "fanzha.db")
    out = run(["export", "--format", "csv"], fanzha_env).stdout
    assert out.splitlines()[0] == "day,label,risk,platform,consultations"
    assert "same" not in out and "洗钱" not in out
    rows = json.loads(run(["export", "--format", "json"], fanzha_env).stdout)
    assert sum(r["consultations"] for r in rows) == 3


def test_forget_deletes_a_chat(fanzha_env, home):
    seed(home / "fanzha.db")
    result = run(["forget", "--chat", "0", "--platform", "telegram"], fanzha_env)
    assert result.returncode == 0 and "deleted" in result.stdout
    data = json.loads(run(["stats", "--json"], fanzha_env).stdout)
    assert data["consultations"] == 1


def test_a_corrupt_database_gives_a_clear_message(fanzha_env, home):
    (home / "fanzha.db").write_bytes(b"garbage" * 1000)
    result = run(["stats"], fanzha_env)
    assert result.returncode == 2 and "damaged" in result.stderr and "Traceback" not in result.stderr


def test_train_includes_reviewed_items(fanzha_env, home, tmp_path):
    import shutil

    from conftest import MODEL_CACHE

    (home / "model").unlink()
    shutil.copytree(MODEL_CACHE, home / "model")
    seed(home / "fanzha.db")
    run(["review"], fanzha_env, stdin="\n")
    result = run(["train", "--include-reviewed"], fanzha_env)
    assert result.returncode == 0, result.stderr
    assert "including 1 reviewed" in result.stderr
    manifest = json.loads((home / "model" / "manifest.json").read_text())
    assert manifest["extra"] == [str(home / "reviewed.jsonl")]
