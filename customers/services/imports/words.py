"""The words an import file may use for the customer's choices (Chinese or English, any case) and
for region names (with or without 省 / 市 / 区 ..., or in English)."""

from __future__ import annotations

import re


def choice_lookup(choices, extra: dict[str, str]) -> dict[str, str]:
    table = {}
    for value, label in choices:
        table[value.lower()] = value
        table[str(label).lower()] = value
    with_labels_en = {k.lower(): v for k, v in extra.items()}
    table.update(with_labels_en)
    return table


KIND_WORDS = {"个人": "person", "企业": "company", "公司": "company", "单位": "company", "personal": "person"}
GENDER_WORDS = {
    "男": "male",
    "女": "female",
    "未知": "unknown",
    "保密": "unknown",
    "m": "male",
    "f": "female",
    "先生": "male",
    "女士": "female",
}
STAGE_WORDS = {
    "新客户": "new",
    "新客": "new",
    "活跃": "active",
    "忠诚": "loyal",
    "沉睡": "dormant",
    "流失": "churned",
}
SOURCE_WORDS = {
    "天猫": "tmall",
    "淘宝": "taobao",
    "京东": "jd",
    "抖音": "douyin",
    "拼多多": "pinduoduo",
    "微信": "wechat",
    "官网": "own_site",
    "自有商城": "own_site",
    "线下": "offline",
    "门店": "offline",
    "线下门店": "offline",
    "转介绍": "referral",
    "推荐": "referral",
    "其他": "other",
    "其它": "other",
}
PLATFORM_WORDS = {
    "天猫": "tmall",
    "淘宝": "taobao",
    "京东": "jd",
    "抖音": "douyin",
    "拼多多": "pinduoduo",
    "微信": "wechat_openid",
    "wechat": "wechat_openid",
    "微信openid": "wechat_openid",
    "openid": "wechat_openid",
    "微信unionid": "wechat_unionid",
    "unionid": "wechat_unionid",
    "官网": "own_site",
    "其他": "other",
    "其它": "other",
}


_REGION_SUFFIXES = re.compile(
    r"(特别行政区|维吾尔自治区|壮族自治区|回族自治区|自治区|自治州|地区|省|市|区|县|盟|旗)$"
)


def region_words(name: str) -> set[str]:
    name = (name or "").strip().lower()
    if not name:
        return set()
    words = {name}
    short = _REGION_SUFFIXES.sub("", name)
    if len(short) >= 2:
        words.add(short)
    for suffix in (" city", " province", " district", " county"):
        if name.endswith(suffix):
            words.add(name[: -len(suffix)])
    return words
