from classifier.normalize import chinese_share, has_content, normalize


def test_contact_app_variants_fold_to_one_spelling():
    for variant in ["加V信", "加薇信", "加威信", "加vx", "加VX", "加v芯"]:
        assert normalize(variant) == "加微信", variant
    assert normalize("加扣扣") == "加QQ"
    assert normalize("企鹅号2893341") == "QQ2893341"


def test_full_width_and_chinese_numeral_digits_become_digits():
    assert normalize("１３８００１３８０００") == "13800138000"
    assert normalize("电话一三八零零一三八零零零") == "电话13800138000"
    # Short numeral words are ordinary prose, not numbers.
    assert normalize("一个人三倍赔偿") == "一个人三倍赔偿"


def test_separators_between_characters_are_removed():
    assert normalize("刷 单 返 利") == "刷单返利"
    assert normalize("刷.单") == "刷单"
    assert normalize("返💰利") == "返利"
    assert normalize("安\u200b全\u200d账户") == "安全账户"
    assert normalize("138 0013 8000") == "13800138000"


def test_traditional_characters_become_simplified():
    assert normalize("請把錢轉到安全帳戶") == "请把钱转到安全账户"


def test_bad_input_never_raises():
    assert normalize("") == ""
    assert normalize("\x00\x01\x7f") == ""
    assert len(normalize("好" * 200_000)) <= 6000
    assert not has_content(normalize("😀😀😀 !!!"))
    assert has_content(normalize("你好"))


def test_chinese_share():
    assert chinese_share("hello world") == 0.0
    assert chinese_share("你好") == 1.0
