"""The classifier: scorer/pipeline agreement, model cache, verdict shape, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from classifier.corpus import load_corpus
from classifier.engine import Classifier, model_key
from classifier.model_store import ModelError, read_manifest
from classifier.normalize import normalize
from classifier.pipeline import build_pipeline, export_weights
from classifier.scorer import Scorer
from classifier.tokens import CHAR_NGRAMS, Tokenizer


def test_scorer_reproduces_the_sklearn_pipeline(knowledge):
    examples = load_corpus(knowledge)
    texts = [e.text for e in examples]
    tokenizer = Tokenizer("rjieba", knowledge.domain_words())
    pipeline = build_pipeline(tokenizer).fit(texts, [e.label for e in examples])
    arrays, vocab = export_weights(pipeline)
    scorer = Scorer(arrays, vocab, tokenizer, CHAR_NGRAMS)
    sample = [*texts[::25], "", "完全没见过的词语组合", "ＶＸ：ａｂｃ１２３"]
    expected = pipeline.predict_proba(sample)
    order = [list(pipeline.classes_).index(c) for c in scorer.classes]
    # As one batch and one message at a time: rows must not leak into each other.
    clean = [normalize(text) for text in sample]
    np.testing.assert_allclose(scorer.probabilities(scorer.features(clean)), expected[:, order], atol=2e-4)
    for text, row in zip(clean, expected, strict=True):
        np.testing.assert_allclose(scorer.probabilities(scorer.features([text]))[0], row[order], atol=2e-4)


def test_model_cache_is_rebuilt_when_inputs_change(knowledge, tmp_path, classifier):
    import shutil

    from conftest import MODEL_CACHE

    model_dir = tmp_path / "model"
    shutil.copytree(MODEL_CACHE, model_dir)
    manifest = read_manifest(model_dir)
    assert manifest["key"] == model_key(knowledge, "rjieba")
    # A stale manifest is refused without auto-training and rebuilt with it.
    data = json.loads((model_dir / "manifest.json").read_text())
    data["key"] = "stale"
    (model_dir / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match="fanzha train"):
        Classifier.open(model_dir, knowledge=knowledge, backend="rjieba", auto_train=False)
    rebuilt = []
    Classifier.open(model_dir, knowledge=knowledge, backend="rjieba", on_train=lambda: rebuilt.append(1))
    assert rebuilt == [1] and read_manifest(model_dir)["key"] == manifest["key"]


def test_only_what_training_reads_decides_when_to_retrain(knowledge):
    import dataclasses

    key = model_key(knowledge, "rjieba")
    reworded = dataclasses.replace(knowledge, replies={**knowledge.replies, "greeting": "您好"})
    assert model_key(reworded, "rjieba") == key  # reply wording never forces a retrain
    loan = knowledge.categories["fake_loan"]
    categories = {
        **knowledge.categories,
        "fake_loan": dataclasses.replace(loan, seeds=(*loan.seeds, "无抵押秒批先交保证金")),
    }
    assert model_key(dataclasses.replace(knowledge, categories=categories), "rjieba") != key
    assert model_key(knowledge, "jieba") != key


def test_the_corpus_is_the_same_in_every_process():
    """Template variants must not depend on Python's hash seed, or two trainings of the same
    files would give different models (and different accuracy figures)."""
    import os
    import subprocess
    import sys

    code = (
        "import hashlib; from classifier.corpus import load_corpus; from classifier.knowledge import load_knowledge; "
        "print(hashlib.sha256(repr(load_corpus(load_knowledge())).encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(digests) == 1


def test_a_new_hyperparameter_rebuilds_cached_models(knowledge, monkeypatch):
    import classifier.hyperparameters as hyper

    key = model_key(knowledge, "rjieba")
    monkeypatch.setattr(hyper, "SVM_C", hyper.SVM_C * 2)
    assert model_key(knowledge, "rjieba") != key


def test_a_damaged_model_file_is_never_half_loaded(knowledge, tmp_path, classifier):
    import shutil

    from conftest import MODEL_CACHE

    model_dir = tmp_path / "model"
    shutil.copytree(MODEL_CACHE, model_dir)
    (model_dir / "weights.npz").write_bytes(b"garbage")
    with pytest.raises(ModelError, match="unreadable"):
        Classifier.open(model_dir, knowledge=knowledge, backend="rjieba", auto_train=False)


def test_verdict_shape(classifier):
    verdict = classifier.classify("您好，我是京东客服，您的商品有质量问题，给您办理三倍赔偿，请下载会议APP开启屏幕共享")
    data = verdict.to_dict()
    assert data["label"] == "refund_scam" and data["is_fraud"] is True and data["risk"] in ("high", "medium")
    assert abs(sum(data["scores"].values()) - 1) < 1e-3
    assert {"screen_share", "link_or_app"} & {r["name"] for r in data["reasons"]}
    assert data["top_terms"] and data["model_version"] == classifier.model_version


@pytest.mark.parametrize(
    "text", ["", " ", "😀😀", "\x00\x01", "a" * 100_000, "\ud800".encode("utf-8", "replace").decode()]
)
def test_bad_input_gets_a_verdict_not_an_exception(classifier, text):
    verdict = classifier.classify(text)
    assert verdict.label in ("benign", "uncertain") or verdict.is_fraud in (True, False)


def test_obfuscated_scam_is_still_caught(classifier):
    plain = "兼职刷单，日结佣金，点赞关注就能赚钱，加微信领任务"
    disguised = "兼 職 刷 單，日結傭金，點贊關注就能賺錢，加ｖ信领任务"
    assert classifier.classify(plain).label == classifier.classify(disguised).label == "rebate_task"


def test_jieba_backend_gives_the_same_features_shape(knowledge):
    a = Tokenizer("jieba", knowledge.domain_words()).cut("请把钱转到安全账户")
    b = Tokenizer("rjieba", knowledge.domain_words()).cut("请把钱转到安全账户")
    assert "安全账户" in a and "安全账户" in b
    with pytest.raises(ValueError):
        Tokenizer("nope")


@pytest.mark.parametrize(
    ("name", "min_accuracy", "max_missed", "max_alarms"),
    [
        ("challenge.jsonl", 0.95, 0.03, 0.03),
        ("realistic.jsonl", 0.93, 0.04, 0.05),
        ("fresh.jsonl", 0.95, 0.03, 0.03),
        ("holdout.jsonl", 0.93, 0.045, 0.05),
        ("holdout2.jsonl", 0.94, 0.035, 0.06),
    ],
)
def test_quality_on_the_held_out_sets_does_not_slip(classifier, name, min_accuracy, max_missed, max_alarms):
    """Floors a little under today's figures (README, "Accuracy"): a change to the corpus,
    features or settings that makes the bot worse on messages it never saw fails here."""
    from bot.evaluation import score_dataset
    from classifier.corpus import read_labelled
    from classifier.resources import resource_path

    report, _ = score_dataset(classifier, read_labelled(resource_path("data/challenge") / name))
    assert report.accuracy >= min_accuracy and report.fraud_missed <= max_missed
    assert report.benign_flagged <= max_alarms
