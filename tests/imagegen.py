"""Phone screenshots drawn with Pillow, so OCR is tested on pictures whose true text we know.

Two screen styles (an SMS thread and a WeChat-like chat) at phone resolutions, light or dark,
with optional noise and JPEG compression. Each picture comes with the text of its bubbles,
which is what the bot should read: the status bar, header and input bar are chrome to drop.

Used by tests/test_ocr.py (a handful of images) and bench/ocr_bench.py (the full matrix).
The messages below were written for these tests; they are not taken from the training data.
"""

from __future__ import annotations

import io
import os
import random
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

#: Where Debian's CJK font packages put their fonts (fonts-noto-cjk, fonts-wqy-zenhei, -microhei).
FONT_PATHS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
)
FONT_HINT = "apt-get install fonts-noto-cjk (or fonts-wqy-zenhei), or set FANZHA_TEST_FONT to a CJK font file"

SIZES = ((720, 1280), (1080, 1920))


def find_cjk_font() -> Path | None:
    """The first CJK font found: FANZHA_TEST_FONT, then the Debian package paths."""
    candidates = [os.environ.get("FANZHA_TEST_FONT", ""), *FONT_PATHS]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@dataclass(frozen=True)
class Scene:
    """One conversation: who sent what. ``left`` bubbles come from the other side."""

    name: str
    scam: bool
    sender: str
    bubbles: tuple[tuple[str, str], ...]  # (side, text) with side "left" or "right"

    @property
    def text(self) -> str:
        return "\n".join(text for _, text in self.bubbles)


def _left(*texts: str) -> tuple[tuple[str, str], ...]:
    return tuple(("left", t) for t in texts)


SCAM_SCENES: tuple[Scene, ...] = (
    Scene("express_refund", True, "+86 171 2093 5521", _left(
        "【快递理赔中心】您好，您的包裹在运输途中丢失，我司将为您办理双倍理赔，"
        "请添加理赔专员微信 kd9527lp 并提供银行卡号和验证码办理退款。",
    )),
    Scene("police_safe_account", True, "+86 165 0021 8834", (
        ("left", "我是市公安局刑侦支队的民警，你的身份证涉嫌一起洗钱案件，已被冻结。"),
        ("right", "怎么可能？我什么都没做"),
        ("left", "为了证明你的清白，你必须把名下存款全部转到国家安全账户接受审查，不得告诉任何人，否则立即逮捕。"),
    )),
    Scene("rebate_task", True, "兼职客服小雅", (
        ("left", "在家动动手指就能赚钱，给商家刷单点赞，一单佣金30元，当天结算，日赚三五百。"),
        ("right", "要交钱吗？"),
        ("left", "首单需要您先垫付本金，完成任务后本金加佣金一起返还，做满三单还有额外奖励。"),
    )),
    Scene("fake_loan", True, "106 9528 7712", _left(
        "【惠民贷】您已获得20万元低息贷款额度，无抵押秒到账。因您的银行卡号填写错误，账户被冻结，"
        "需先缴纳解冻保证金5000元，解冻后全额退还。",
    )),
    Scene("investment_platform", True, "王老师", (
        ("left", "我们内部有个稳赚不赔的投资平台，导师带单，保证收益，每天稳定回报百分之三十。"),
        ("right", "真的假的"),
        ("left", "我自己上周就赚了八万，你先充值一万试试，名额有限，今晚就关闭通道。"),
    )),
    Scene("customer_service_refund", True, "+86 188 6632 1045", _left(
        "您好，我是淘宝客服，您购买的商品质量有问题，我们将为您办理退款，"
        "请打开支付宝备用金，按我的指引操作，并把收到的验证码告诉我。",
    )),
    Scene("boss_impersonation", True, "张总", (
        ("left", "小李，我是张总，这是我的新微信。"),
        ("right", "张总好"),
        ("left", "我在开会不方便接电话，你马上给这个账户转账48000元，是合同预付款，急用，转完把回单发我。"),
    )),
    Scene("prize_winning", True, "10690 2235", _left(
        "恭喜您的手机号被抽中幸运大奖，获得现金58000元及苹果电脑一台，请点击链接 http://t.cn/A6xYz9 "
        "填写银行卡信息领取，先缴纳个人所得税和手续费。",
    )),
    Scene("etc_certification", True, "106 5502 1888", _left(
        "【ETC服务】您的ETC卡已失效，即将停用，请立即点击 http://etc-renz.cc 进行认证，"
        "输入银行卡号和短信验证码完成激活。",
    )),
    Scene("credit_repair", True, "+86 170 3318 2290", _left(
        "您好，您的学生贷款账户未注销，会严重影响征信，请下载会议软件共享屏幕，"
        "配合我们把贷款额度全部取出转入指定账户注销，逾期将上报征信系统。",
    )),
    Scene("game_trading", True, "买家小王", (
        ("left", "你这个游戏账号我五千买了，我们走这个交易平台 www.dd373-jy.top 安全。"),
        ("right", "好的，我去注册"),
        ("left", "平台说你的账户被冻结了，要先交3000元保证金才能解冻提现，钱会退的。"),
    )),
    Scene("romance_gambling", True, "Lily", (
        ("left", "亲爱的，我舅舅在博彩公司做技术，发现了系统漏洞，下注稳赚。"),
        ("right", "这样安全吗"),
        ("left", "相信我，你先充两万进去，我教你怎么投注，赚了我们一起结婚买房。"),
    )),
    Scene("medical_insurance", True, "+86 166 2381 0049", _left(
        "【医保局】您的医保卡存在异常消费，已被冻结，如非本人操作请联系专员处理，"
        "否则将承担法律责任，请将卡内资金转到安全账户。",
    )),
    Scene("fake_relative", True, "妈妈", (
        ("left", "儿子，我手机坏了这是新号。你舅舅住院急需手术费，你先转三万块到这个卡上，"
                 "6222 0212 3456 7890 123，别告诉你爸。"),
    )),
    Scene("account_blocked", True, "95559", _left(
        "【交通银行】尊敬的客户：您的账户因涉嫌违规操作已被限制，请于今日内登录 http://bankcomm-vip.com "
        "更新身份信息并输入动态验证码，逾期账户将永久冻结。",
    )),
    Scene("flight_refund", True, "+86 135 2218 6609", _left(
        "您好，您的航班MU5137因机械故障已取消，请联系客服办理改签并领取300元补偿金，"
        "客服会引导您在手机银行输入验证码接收退款。",
    )),
)

BENIGN_SCENES: tuple[Scene, ...] = (
    Scene("parcel_pickup", False, "106 9000 5588", _left(
        "【菜鸟驿站】您的包裹已到东门驿站，凭取件码 8-3-2105 取件，营业时间早8点至晚9点。",
    )),
    Scene("family_dinner", False, "老妈", (
        ("left", "周末回家吃饭吗？你爸买了条鱼。"),
        ("right", "回，周六中午到"),
        ("left", "好，路上注意安全，到了给我打电话。"),
    )),
    Scene("doctor_appointment", False, "10655 1200", _left(
        "【市第一人民医院】您已成功预约3月12日上午9:30内科门诊，请携带身份证和医保卡按时就诊。",
    )),
    Scene("neighbour_group", False, "三号楼邻居群", (
        ("left", "明天上午九点到十一点小区停水检修，请大家提前储水。"),
        ("right", "收到，谢谢物业"),
    )),
    Scene("colleague_meeting", False, "陈工", (
        ("left", "下午三点的会改到四点了，会议室不变。"),
        ("right", "好的，我通知一下小组"),
    )),
    Scene("bank_notice_genuine", False, "95588", _left(
        "【工商银行】您尾号3321的卡于10月5日14:02消费支出人民币58.00元，余额1203.55元。",
    )),
    Scene("school_notice", False, "王老师", (
        ("left", "各位家长好，明天学校组织春游，请给孩子准备午餐和水，早上七点半在校门口集合。"),
        ("right", "收到，谢谢王老师"),
    )),
    Scene("utility_bill", False, "95598", _left(
        "【国网电力】您家户号尾号7788的电费账单已出，本月电费126.40元，可在网上国网APP缴纳。",
    )),
)


@dataclass(frozen=True)
class Look:
    """How one screenshot is drawn."""

    style: str = "sms"  # "sms" or "chat"
    size: tuple[int, int] = (720, 1280)
    dark: bool = False
    noise: float = 0.0  # standard deviation of Gaussian pixel noise (0-255 scale)
    jpeg_quality: int | None = None  # None: PNG
    seed: int = 0
    text_dp: int = 16  # message font size in points (WeChat's default is ~16; elderly users set 18+)


@dataclass
class Screenshot:
    image_bytes: bytes
    truth: list[str]  # bubble texts, in reading order
    chrome: list[str] = field(default_factory=list)  # texts drawn that the bot should drop
    look: Look = field(default_factory=Look)


@cache
def _font(path: str, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(path, size)


_NO_LINE_START = "，。、；：？！）》」”,.;:?!)"


def _wrap(draw, text: str, font, width: int) -> list[str]:
    """Break *text* into lines no wider than *width* pixels, character by character like a phone."""
    lines, current = [], ""
    for ch in text:
        if draw.textlength(current + ch, font=font) > width and current and ch not in _NO_LINE_START:
            lines.append(current)
            current = ch.lstrip() if ch == " " else ch
        else:
            current += ch
    if current:
        lines.append(current)
    return lines


_PALETTES = {
    # background, header, text, left bubble, right bubble, right text, secondary text, input box
    ("sms", False): ("#ffffff", "#f7f7f7", "#111111", "#e9e9eb", "#34c759", "#ffffff", "#8e8e93", "#f2f2f2"),
    ("sms", True): ("#000000", "#111111", "#f2f2f2", "#262629", "#30b350", "#ffffff", "#8e8e93", "#1c1c1e"),
    ("chat", False): ("#ededed", "#ededed", "#191919", "#ffffff", "#95ec69", "#191919", "#7f7f7f", "#ffffff"),
    ("chat", True): ("#111111", "#1e1e1e", "#d5d5d5", "#2c2c2c", "#3eb575", "#0d0d0d", "#8a8a8a", "#2c2c2c"),
}


def render(scene: Scene, look: Look, font_path: Path | str | None = None) -> Screenshot:
    """Draw *scene* as a phone screenshot; return encoded bytes and the bubbles' true text."""
    import numpy as np
    from PIL import Image, ImageDraw

    path = str(font_path or find_cjk_font() or "")
    if not path:
        raise FileNotFoundError(f"no CJK font found: {FONT_HINT}")
    rng = random.Random(look.seed)
    width, height = look.size
    s = width / 360  # density: 2 at 720 px wide, 3 at 1080 px
    bg, header_bg, fg, left_bg, right_bg, right_fg, muted, input_bg = _PALETTES[(look.style, look.dark)]
    img = Image.new("RGB", look.size, bg)
    draw = ImageDraw.Draw(img)
    chrome: list[str] = []

    def text_at(xy, text, size, fill, anchor="la") -> None:
        draw.text(xy, text, font=_font(path, round(size * s)), fill=fill, anchor=anchor)

    # Status bar: time, carrier, signal bars, battery.
    bar_h = round(24 * s)
    clock = f"{rng.randint(7, 22)}:{rng.randint(0, 59):02d}"
    battery = f"{rng.randint(12, 100)}%"
    carrier = rng.choice(["中国移动", "中国联通", "中国电信"])
    draw.rectangle((0, 0, width, bar_h), fill=header_bg)
    text_at((10 * s, 12 * s), clock, 12, fg, "lm")
    text_at((48 * s, 12 * s), carrier + " 4G", 11, fg, "lm")
    for i in range(4):  # signal bars
        x = width - 92 * s + i * 4 * s
        draw.rectangle((x, (16 - 3 * i) * s, x + 2.5 * s, 18 * s), fill=fg)
    text_at((width - 40 * s, 12 * s), battery, 11, fg, "rm")
    draw.rectangle((width - 36 * s, 7 * s, width - 12 * s, 17 * s), outline=fg, width=max(1, round(s / 2)))
    draw.rectangle((width - 34 * s, 9 * s, width - 20 * s, 15 * s), fill=fg)
    chrome += [clock, battery, carrier]

    # Header: back arrow, title, menu.
    head_h = round(48 * s)
    draw.rectangle((0, bar_h, width, bar_h + head_h), fill=header_bg)
    mid = bar_h + head_h / 2
    back = "<" if look.style == "sms" else "< 微信"
    text_at((12 * s, mid), back, 17, fg, "lm")
    text_at((width / 2, mid), scene.sender, 16, fg, "mm")
    text_at((width - 16 * s, mid), "···", 16, fg, "rm")
    chrome.append(back)

    # Input bar at the bottom.
    input_h = round(56 * s)
    top_input = height - input_h
    draw.rectangle((0, top_input, width, height), fill=header_bg)
    if look.style == "chat":
        box = (48 * s, top_input + 10 * s, width - 96 * s, height - 10 * s)
        draw.rounded_rectangle(box, radius=4 * s, fill=input_bg)
        hold = "按住 说话"
        text_at(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), hold, 15, fg, "mm")
        draw.ellipse((12 * s, top_input + 16 * s, 36 * s, top_input + 40 * s), outline=fg, width=max(1, round(s)))
        draw.ellipse((width - 64 * s, top_input + 16 * s, width - 40 * s, top_input + 40 * s), outline=fg,
                     width=max(1, round(s)))
        text_at((width - 22 * s, top_input + 28 * s), "+", 20, fg, "mm")
        chrome.append(hold)
    else:
        box = (12 * s, top_input + 10 * s, width - 70 * s, height - 10 * s)
        draw.rounded_rectangle(box, radius=18 * s, fill=input_bg)
        text_at((box[0] + 12 * s, (box[1] + box[3]) / 2), "短信/彩信", 14, muted, "lm")
        text_at((width - 36 * s, top_input + 28 * s), "发送", 15, muted, "mm")
        chrome += ["短信/彩信", "发送"]

    # The conversation.
    body_size = look.text_dp
    font = _font(path, round(body_size * s))
    line_h = round(body_size * s * 1.45)
    pad = round(10 * s)
    avatar = round(40 * s) if look.style == "chat" else 0
    max_text = round(width * 0.66) - 2 * pad
    y = bar_h + head_h + round(14 * s)
    stamp = f"{rng.choice(['昨天', '星期二', '今天'])} {rng.randint(8, 21)}:{rng.randint(0, 59):02d}"
    text_at((width / 2, y + 8 * s), stamp, 12, muted, "mm")
    chrome.append(stamp)
    y += round(30 * s)
    truth: list[str] = []
    for side, text in scene.bubbles:
        lines = _wrap(draw, text, font, max_text)
        text_w = max(draw.textlength(line, font=font) for line in lines)
        bubble_w, bubble_h = text_w + 2 * pad, len(lines) * line_h + 2 * pad - (line_h - body_size * s)
        if side == "left":
            x0 = 10 * s + (avatar + 8 * s if avatar else 0)
            fill, colour = left_bg, fg
        else:
            x0 = width - 10 * s - (avatar + 8 * s if avatar else 0) - bubble_w
            fill, colour = right_bg, right_fg
        if y + bubble_h > top_input - 10 * s:
            break  # the screen is full; what is not drawn is not truth
        if avatar:
            ax = 10 * s if side == "left" else width - 10 * s - avatar
            draw.rounded_rectangle((ax, y, ax + avatar, y + avatar), radius=4 * s, fill=_avatar_colour(rng))
        radius = 4 * s if look.style == "chat" else 16 * s
        draw.rounded_rectangle((x0, y, x0 + bubble_w, y + bubble_h), radius=radius, fill=fill)
        for i, line in enumerate(lines):
            draw.text((x0 + pad, y + pad + i * line_h), line, font=font, fill=colour)
        truth.append(text)
        y += bubble_h + round(16 * s)

    if look.noise > 0:
        pixels = np.asarray(img, dtype=np.float32)
        noise = np.random.default_rng(look.seed).normal(0, look.noise, pixels.shape)
        img = Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))
    out = io.BytesIO()
    if look.jpeg_quality:
        img.save(out, "JPEG", quality=look.jpeg_quality)
    else:
        img.save(out, "PNG")
    return Screenshot(out.getvalue(), truth, chrome, look)


def _avatar_colour(rng: random.Random) -> str:
    return rng.choice(["#5b8def", "#e3795a", "#7bc47f", "#b48ee0", "#d9b44a"])


def looks(seed: int = 0) -> list[Look]:
    """Every style x size x mode, each with its own mild noise and JPEG quality (seeded)."""
    rng = random.Random(seed)
    out = []
    for style in ("sms", "chat"):
        for size in SIZES:
            for dark in (False, True):
                noisy = rng.random() < 0.5
                out.append(
                    Look(
                        style,
                        size,
                        dark,
                        noise=rng.uniform(4, 12) if noisy else 0.0,
                        jpeg_quality=rng.choice([None, 60, 75, 85]),
                        seed=rng.randrange(1 << 30),
                        text_dp=rng.choice([14, 16, 18]),
                    )
                )
    return out
