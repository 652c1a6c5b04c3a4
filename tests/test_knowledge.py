from pathlib import Path

import pytest

from classifier.knowledge import CATEGORY_IDS, KnowledgeError, load_knowledge, parse_knowledge
from classifier.resources import resource_path


def test_the_shipped_knowledge_base_is_valid(knowledge):
    assert tuple(knowledge.categories) == CATEGORY_IDS
    assert knowledge.hotline.consult == "96110"
    for category in knowledge.categories.values():
        assert category.advice and category.name and category.seeds


def _broken(tmp_path, old, new):
    text = resource_path("intents.yaml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "intents.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_missing_key_names_file_line_and_key(tmp_path):
    path = _broken(tmp_path, "    advice:\n      - 真正的退款", "    advise:\n      - 真正的退款")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(path)
    message = str(err.value)
    assert "categories.refund_scam.advice: missing" in message
    assert "intents.yaml:" in message


def test_unknown_placeholder_in_a_reply_fails_at_load(tmp_path):
    path = _broken(tmp_path, "banner_high: ⚠️", "banner_high: ⚠️{nmae}")
    with pytest.raises(KnowledgeError, match=r"replies.banner_high: unknown placeholder nmae"):
        load_knowledge(path)


def test_unknown_category_and_bad_yaml(tmp_path):
    path = _broken(tmp_path, "  rebate_task:\n", "  rebate_tasks:\n")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(path)
    assert "categories.rebate_task: missing" in str(err.value)
    assert "categories.rebate_tasks: unknown category id" in str(err.value)
    with pytest.raises(KnowledgeError, match="not valid YAML"):
        parse_knowledge("a: [unclosed", Path("intents.yaml"))
    with pytest.raises(KnowledgeError, match="cannot read"):
        load_knowledge(tmp_path / "nope.yaml")
