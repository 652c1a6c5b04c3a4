"""The fanzha command as a user runs it: real processes, real files."""

from __future__ import annotations

import json
import subprocess

from conftest import FANZHA

SCAM = "我是公安局民警，你的银行卡涉嫌洗钱，请把钱转到安全账户配合资金清查，不要告诉家人"


def run(args, env, input_text=None, timeout=60):
    return subprocess.run(
        FANZHA + args, env=env, input=input_text, capture_output=True, text=True, timeout=timeout, encoding="utf-8"
    )


def test_check_prints_the_bots_reply(fanzha_env):
    result = run(["check", SCAM], fanzha_env)
    assert result.returncode == 0, result.stderr
    assert "高风险" in result.stdout and "冒充公检法" in result.stdout and "96110" in result.stdout


def test_check_json_and_stdin(fanzha_env):
    result = run(["check", "--json"], fanzha_env, input_text=SCAM)
    data = json.loads(result.stdout)
    assert data["label"] == "safe_account" and data["is_fraud"] is True
    assert {"label", "is_fraud", "confidence", "risk", "reasons", "entities", "scores"} <= set(data)
    benign = json.loads(run(["check", "--json", "妈，我周六回家吃饭"], fanzha_env).stdout)
    assert benign["label"] == "benign" and benign["is_fraud"] is False


def test_check_exit_status_is_zero_whatever_the_verdict(fanzha_env):
    for text in [SCAM, "你好", "😀", "   "]:
        assert run(["check", text], fanzha_env).returncode == 0, text


def test_classify_keeps_order_and_survives_bad_lines(fanzha_env):
    lines = [
        json.dumps({"text": SCAM}, ensure_ascii=False),
        "this is not json",
        json.dumps({"id": 7, "text": "【京东】您的快递已发货，请注意查收。退订回T"}, ensure_ascii=False),
        json.dumps([1, 2]),
        json.dumps({"content": ""}),
        json.dumps({"text": "好" * 100_000}, ensure_ascii=False),
        "",
        json.dumps({"nope": 1}),
        json.dumps({"id": 2**70 + 1, "text": "今晚回家吃饭吗"}, ensure_ascii=False),
    ]
    data = ("\n".join(lines) + "\n").encode() + b"\xff\xfe\x00binary\n"
    result = subprocess.run([*FANZHA, "classify"], env=fanzha_env, input=data, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(out) == 9
    assert out[0]["label"] == "safe_account"
    assert "error" in out[1] and "error" in out[3]
    assert out[2]["id"] == 7 and out[2]["label"] == "benign"
    assert out[4]["label"] == "uncertain" and out[5]["truncated"] is True
    assert "error" in out[6]
    assert out[7]["id"] == 2**70 + 1 and out[7]["label"] == "benign"  # an id beyond 64 bits survives
    assert "error" in out[8]  # the stray binary line; the blank line was skipped


def test_classify_in_parallel_gives_the_same_lines_in_the_same_order(fanzha_env):
    texts = [SCAM, "妈，我周六回家吃饭", "【京东】您的快递已发货，请注意查收。退订回T", "兼职刷单日结，先垫付后返佣"]
    lines = [json.dumps({"id": i, "text": texts[i % 4] + str(i)}, ensure_ascii=False) for i in range(700)]
    lines[300] = "not json"  # a bad line inside a worker's chunk
    data = ("\n".join(lines) + "\n").encode()
    outputs = []
    for jobs in ("1", "2"):
        result = subprocess.run(
            [*FANZHA, "classify", "--jobs", jobs], env=fanzha_env, input=data, capture_output=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    out = [json.loads(line) for line in outputs[1].decode().splitlines()]
    assert len(out) == 700 and "error" in out[300]
    assert [o["id"] for o in out if "id" in o] == [i for i in range(700) if i != 300]


def test_evaluate_on_an_operators_csv_with_label_map(fanzha_env, tmp_path):
    path = tmp_path / "cases.csv"
    path.write_text(f"content,label\n{SCAM},公检法\n妈我明天回家,正常\n", encoding="utf-8")
    result = run(
        ["evaluate", "--data", str(path), "--label-map", "公检法=safe_account,正常=benign", "--json"], fanzha_env
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)["cases.csv"]
    assert report["n"] == 2 and report["fraud_flagged"] == 1.0 and report["benign_flagged"] == 0.0
    bad = run(["evaluate", "--data", str(path)], fanzha_env)
    assert bad.returncode == 2 and "label-map" in bad.stderr and "Traceback" not in bad.stderr


def test_a_broken_knowledge_base_stops_with_a_clear_message(fanzha_env, tmp_path):
    broken = tmp_path / "intents.yaml"
    broken.write_text("version: 1\ncategories: {}\n", encoding="utf-8")
    result = run(["check", "hi"], {**fanzha_env, "FANZHA_INTENTS": str(broken)})
    assert result.returncode == 2 and "categories.rebate_task: missing" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_setting_stops_with_a_clear_message_and_status_2(fanzha_env):
    result = run(["check", "你好"], {**fanzha_env, "FANZHA_TIP_TIME": "25:99"})
    assert result.returncode == 2 and "FANZHA_TIP_TIME" in result.stderr and "Traceback" not in result.stderr


def test_every_command_is_documented_in_the_readme():
    from pathlib import Path

    from bot.cli import cli

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for name in cli.commands:
        assert f"fanzha {name}" in readme, name
