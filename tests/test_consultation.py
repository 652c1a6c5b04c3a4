"""Golden conversations through the platform-neutral core."""

from __future__ import annotations

import pytest

from bot.consultation import Consultation
from bot.messages import GROUP, IncomingMessage
from bot.session import Sessions

GOLDEN = {
    "rebate_task": "兼职刷单，日结佣金，点赞关注一单返5元，先垫付连单任务完成后一起返还本金和佣金，加V信 kk-8821 进任务群",
    "refund_scam": "您好，我是快递理赔专员，您的包裹在运输途中丢失了，我们给您双倍赔偿，请下载会议软件开启屏幕共享，我指导您办理退款",
    "safe_account": "我是市公安局民警，你的身份证涉嫌一起洗钱案件，现在要对你的资金进行清查，请把钱转到安全账户，此事必须保密不能告诉家人",
    "fake_loan": "无抵押无担保，黑户也能贷，当天放款。您的银行卡号填写错误，贷款资金已被冻结，需先缴纳解冻金才能放款到账",
    "investment": "老师带单稳赚不赔，内部消息这只股票明天涨停，日收益百分之二十，进群跟着操作，提现前需要先交个人所得税",
    "impersonate_acquaintance": "我是你们王总，这是我新微信，我在开会不方便接电话，你先帮我给这个账户转五万块，急用，别告诉别人",
}


def make(classifier, **kw):
    return Consultation(classifier, sessions=Sessions(batch_window=kw.pop("batch_window", 4.0)), **kw)


def msg(text, **kw):
    kw.setdefault("chat_id", "c1")
    return IncomingMessage(text=text, **kw)


@pytest.mark.parametrize("category,text", GOLDEN.items())
def test_each_script_gets_a_warning_with_its_advice(classifier, knowledge, category, text):
    outcome = make(classifier).respond(msg(text), now=0.0)
    assert outcome.action == "verdict"
    assert outcome.verdict.is_fraud and outcome.verdict.label == category
    body = outcome.replies[0].plain()
    assert "高风险" in body or "可疑" in body
    assert knowledge.categories[category].name in body
    assert knowledge.categories[category].advice[0] in body
    assert "96110" in body and "110" in body
    assert "你是否已经转账" in body
    assert [q.payload for q in outcome.replies[0].quick_replies] == ["paid", "not_paid"]


def test_red_flags_found_are_quoted(classifier):
    outcome = make(classifier).respond(msg(GOLDEN["safe_account"]), now=0.0)
    names = {r.name for r in outcome.verdict.reasons}
    assert {"safe_account", "pressure_secrecy", "transfer_request"} <= names
    assert "安全账户" in outcome.replies[0].plain()


def test_already_paid_takes_the_urgent_path_without_classifying(classifier):
    for text in ["我已经转账了怎么办", "被骗了怎么办", "验证码给他了"]:
        outcome = make(classifier).respond(msg(text), now=0.0)
        assert outcome.action == "urgent" and outcome.verdict is None, text
        body = outcome.replies[0].plain()
        assert body.index("110") < body.index("银行")
        assert "追回" in body


def test_follow_up_answers_by_text_and_by_button(classifier):
    core = make(classifier)
    core.respond(msg(GOLDEN["refund_scam"]), now=0.0)
    assert core.respond(msg("没有"), now=10.0).action == "not_paid"
    core.respond(msg(GOLDEN["refund_scam"]), now=20.0)
    assert core.respond(msg("", quick_reply="paid"), now=25.0).action == "urgent"


def test_follow_up_expires(classifier):
    core = make(classifier)
    core.respond(msg(GOLDEN["refund_scam"]), now=0.0)
    assert core.respond(msg("没有"), now=3600.0).action != "not_paid"


def test_benign_verdict_never_says_safe(classifier):
    text = "【某某银行】您尾号3321的信用卡本期账单已出，应还金额1,280.00元，还款日12月20日，请通过手机银行APP按时还款。"
    outcome = make(classifier).respond(msg(text), now=0.0)
    assert outcome.action == "verdict" and outcome.verdict.label == "benign"
    body = outcome.replies[0].plain()
    assert "未发现明显诈骗特征" in body and "不转账" in body and "96110" in body
    assert "安全的" not in body and not outcome.replies[0].quick_replies


def test_marketing_sms_is_called_an_ordinary_advert(classifier):
    text = "【优品生活馆】双十二全场满199减60，会员积分可抵现，活动截止12月12日，详询门店。退订回T"
    outcome = make(classifier).respond(msg(text), now=0.0)
    assert outcome.verdict.label == "benign"
    assert "普通的商家广告" in outcome.replies[0].plain()


def test_questions_are_answered_from_the_knowledge_base(classifier):
    core = make(classifier)
    assert core.respond(msg("96110是真的吗"), now=0.0).action == "question:hotline_96110"
    assert core.respond(msg("怎么关闭境外来电？"), now=0.0).action == "question:intl_calls"
    assert core.respond(msg("什么是杀猪盘"), now=0.0).action == "question:what_is_pig_butchering"
    assert core.respond(msg("安全账户是什么"), now=0.0).action == "question:what_is_safe_account"


def test_greeting_thanks_help_and_small_talk(classifier):
    core = make(classifier)
    assert core.respond(msg("你好"), now=0.0).action == "greeting"
    assert core.respond(msg("谢谢你"), now=0.0).action == "thanks"
    assert core.respond(msg("你能做什么"), now=0.0).action == "help"
    assert core.respond(msg("今天天气不错"), now=0.0).action == "small_talk"


def test_a_number_or_link_to_check_is_described_never_called_safe(classifier):
    core = make(classifier)
    outcome = core.respond(msg("帮我看看这个 t.cn/A6xYz"), now=0.0)
    assert outcome.action == "entity"
    body = outcome.replies[0].plain()
    assert "短链接" in body and "无法判断" in body
    body = core.respond(msg("+44 7700 900123 这个号码"), now=0.0).replies[0].plain()
    assert "境外号码" in body
    body = core.respond(msg("95588"), now=0.0).replies[0].plain()
    assert "官网" in body
    body = core.respond(msg("icbc-vip.cc"), now=0.0).replies[0].plain()
    assert "仿冒" in body and "工商银行" in body


def test_forwarded_batch_is_judged_once(classifier):
    core = make(classifier)
    parts = [
        "客服：您好，您在我们平台开通了百万保障",
        "客服：不取消的话每月自动扣费800元",
        "客服：请下载会议APP开启屏幕共享，我帮您关闭",
    ]
    for n, part in enumerate(parts):
        outcome = core.respond(msg(part, forwarded=True), now=float(n))
        assert outcome.action == "batched" and outcome.silent
    assert core.flush("console", "c1", "private", now=3.0) is None  # window still open
    outcome = core.flush("console", "c1", "private", now=6.5)
    assert outcome.verdict.label == "refund_scam"
    assert "3 条消息" in outcome.replies[0].plain()
    assert core.flush("console", "c1", "private", now=20.0) is None  # judged once


def test_uncertain_verdict_says_so(classifier):
    from bot.compose import Wording, verdict_reply
    from classifier.verdict import Verdict

    verdict = Verdict("uncertain", "rebate_task", False, 0.6, 0.4, "low", {"benign": 0.6})
    body = verdict_reply(Wording(classifier.knowledge), verdict).plain()
    assert "拿不准" in body and "96110" in body


@pytest.mark.parametrize(
    "text,action",
    [
        ("", "empty"),
        ("   \n\t", "empty"),
        ("😀😀😀🙏", "no_content"),
        ("\x00\x01\x02", "no_content"),
        ("Hello, how are you doing today my friend?", "not_chinese"),
    ],
)
def test_bad_input_gets_a_kind_reply(classifier, text, action):
    outcome = make(classifier).respond(msg(text), now=0.0)
    assert outcome.action == action and outcome.replies


def test_huge_input_is_checked_and_says_it_was_cut(classifier):
    text = GOLDEN["safe_account"] + "。" + "今天天气很好我们去公园散步。" * 8000
    outcome = make(classifier).respond(msg(text), now=0.0)
    assert outcome.action == "verdict"
    assert "只看了前面一部分" in outcome.replies[0].plain()


def test_checks_are_rate_limited_per_chat(classifier):
    core = Consultation(classifier, sessions=Sessions(checks_per_minute=2))
    results = [core.respond(msg(GOLDEN["fake_loan"]), now=float(i)).action for i in range(3)]
    assert results == ["verdict", "verdict", "rate_limited"]
    assert core.respond(msg(GOLDEN["fake_loan"]), now=70.0).action == "verdict"
    assert core.respond(msg(GOLDEN["fake_loan"], chat_id="other"), now=3.0).action == "verdict"


class _Log:
    def __init__(self, autowarn=False):
        self.autowarn, self.rows = autowarn, []

    def record_consultation(self, **row):
        self.rows.append(row)
        return len(self.rows)

    def autowarn_enabled(self, platform, chat_id):
        return self.autowarn


def test_group_everyday_chat_is_left_alone(classifier):
    core = make(classifier, log=_Log(autowarn=True))
    assert core.respond(msg("今晚七点小区广场跳舞，大家准时来", chat_kind=GROUP), now=0.0).silent
    # Without auto-warning even a scam posted in the group gets no reply unless asked.
    quiet = make(classifier, log=_Log(autowarn=False))
    assert quiet.respond(msg(GOLDEN["safe_account"], chat_kind=GROUP), now=0.0).silent


def test_group_autowarn_gives_one_short_warning(classifier):
    log = _Log(autowarn=True)
    outcome = make(classifier, log=log).respond(msg(GOLDEN["safe_account"], chat_kind=GROUP), now=0.0)
    assert outcome.action == "group_warning"
    assert len(outcome.replies) == 1 and len(outcome.replies[0].plain()) < 80
    assert len(log.rows) == 1


def test_group_answers_when_addressed(classifier):
    outcome = make(classifier).respond(msg(GOLDEN["fake_loan"], chat_kind=GROUP, addressed=True), now=0.0)
    assert outcome.action == "verdict" and outcome.verdict.is_fraud


def test_consultations_are_logged_with_a_keyed_hash_not_text(classifier):
    log = _Log()
    core = make(classifier, log=log, hash_key=b"k1")
    outcome = core.respond(msg(GOLDEN["fake_loan"]), now=0.0)
    row = log.rows[0]
    assert outcome.consultation_id == 1 and outcome.replies[0].feedback_for == 1
    assert GOLDEN["fake_loan"] not in repr(row)
    assert len(row["text_hash"]) == 32
    other = make(classifier, log=_Log(), hash_key=b"k2")
    assert other.text_hash("abc") != core.text_hash("abc")
