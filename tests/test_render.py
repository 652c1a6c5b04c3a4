from bot.messages import Block, QuickReply, Reply
from bot.render import TELEGRAM_LIMIT, WECHAT_LIMIT_BYTES, render_plain, render_telegram, render_wechat


def test_telegram_html_is_escaped():
    reply = Reply((Block("<b>注意</b> & 小心", "banner"), Block("a<b", "item")))
    html = render_telegram(reply)[0]
    assert html.startswith("<b>&lt;b&gt;注意&lt;/b&gt; &amp; 小心</b>")
    assert "• a&lt;b" in html


def test_long_replies_split_between_sentences_within_limits():
    sentence = "请不要转账给陌生人，这一点非常重要。"
    reply = Reply(tuple(Block(sentence * 40) for _ in range(12)))
    parts = render_telegram(reply)
    assert len(parts) > 1 and all(len(p) <= TELEGRAM_LIMIT for p in parts)
    assert all(p.endswith("。") for p in parts)
    assert "".join(parts).replace("\n", "") == (sentence * 40 * 12)
    wechat = render_wechat(reply)
    assert all(len(p.encode()) <= WECHAT_LIMIT_BYTES for p in wechat)
    assert all(p.endswith("。") for p in wechat)


def test_wechat_offers_numbered_answers():
    reply = Reply((Block("问题？", "heading"),), (QuickReply("已经转账", "paid"), QuickReply("没有", "not_paid")))
    text = render_wechat(reply)[0]
    assert "回复 1：已经转账" in text and "回复 2：没有" in text
    assert "回复 1" not in render_plain(reply)
