from classifier.entities import describe_url, extract_entities, luhn_ok
from classifier.normalize import normalize


def kinds(text):
    return {(e.kind, e.value, e.note) for e in extract_entities(normalize(text))}


def test_urls_are_described_from_the_text_alone():
    found = kinds("点击 taobao-kf.top/refund 或 http://3.85.12.7:8080/app 或 t.cn/A6xYz 或 www.icbc.com.cn")
    assert ("url", "taobao-kf.top/refund", "lookalike:淘宝") in found
    assert ("url", "http://3.85.12.7:8080/app", "ip") in found
    assert ("url", "t.cn/A6xYz", "shortener") in found
    assert ("url", "www.icbc.com.cn", "official:工商银行") in found
    assert describe_url("icbc-vip.cc") == "lookalike:工商银行"
    assert describe_url("example.org") == "plain"


def test_phone_numbers_by_kind():
    found = kinds("手机１３８００１３８０００，座机010-62345678，客服400-820-1234，95588，+44 7700 900123，96110")
    assert ("phone", "13800138000", "mobile") in found
    assert ("phone", "01062345678", "landline") in found
    assert ("phone", "4008201234", "service") in found
    assert ("phone", "95588", "service") in found
    assert ("phone", "+447700900123", "overseas") in found
    assert ("phone", "96110", "hotline") in found


def test_bank_cards_must_pass_luhn():
    assert luhn_ok("6222021234567890128")
    assert not luhn_ok("6222021234567890123")
    found = kinds("转到6222021234567890128，不是6222021234567890123")
    assert ("bank_card", "6222021234567890128", "") in found
    assert not any(v == "6222021234567890123" for k, v, _ in found if k == "bank_card")


def test_accounts_amounts_and_codes():
    found = kinds("加薇信 tk-0917 或 QQ：2893341，先转5000元，验证码是382910")
    assert ("wechat", "tk-0917", "") in found
    assert ("qq", "2893341", "") in found
    assert ("amount", "5000元", "") in found
    assert ("code", "382910", "") in found


def test_amount_is_not_a_service_number():
    assert not any(k == "phone" for k, _, _ in kinds("赔偿10000元"))
