"""The patrol report: index.html (a grid of thumbnails with verdicts, Chinese first, fit to print), patrol.json,
patrol.csv and the thumbnails themselves, in one folder that can be opened offline or mailed."""

from __future__ import annotations

import csv
import html
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from monitoring.compliance import AREA_NAMES

VERDICT_NAMES = {
    "ok": ("正常", "OK"),
    "no_signal": ("无信号", "no signal"),
    "black": ("黑屏", "black"),
    "frozen": ("画面冻结", "frozen"),
    "blurred": ("画面模糊", "blurred"),
    "covered": ("镜头遮挡", "lens covered"),
    "color_cast": ("偏色", "colour cast"),
    "too_dark": ("画面过暗", "too dark"),
    "too_bright": ("画面过亮", "too bright"),
}

# Why a camera has no picture (gateway/services/patrol.py's NO_PICTURE_REASONS), Chinese first: what the school's
# technician has to do differs (check the password, or go and see the cable and the power).
REASON_NAMES = {
    "auth_failed": ("密码错误", "wrong password"),
    "timeout": ("连接超时", "timed out"),
    "unreachable": ("无法连接", "unreachable"),
    "protocol_error": ("码流异常", "stream not readable"),
    "no_stream": ("无视频地址", "no stream address"),
}

STYLE = """
body{font-family:"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;margin:16px;color:#1b1b1b}
h1{font-size:1.3rem;margin:0}.sub{color:#555;margin:4px 0 12px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:10px}
.cam{border:1px solid #ccc;border-radius:6px;overflow:hidden;break-inside:avoid}
.cam img,.none{width:100%;aspect-ratio:16/9;object-fit:cover;display:block;background:#222;color:#aaa;
 display:flex;align-items:center;justify-content:center}
.body{padding:6px 8px;font-size:.85rem}.name{font-weight:600}
.v{display:inline-block;padding:1px 6px;border-radius:9px;color:#fff;font-size:.75rem;background:#c62828}
.v.ok{background:#1a7f37}.summary span{margin-right:12px}.why{color:#c62828}
@media print{body{margin:0}.grid{grid-template-columns:repeat(4,1fr)}}
"""


def area_name(area: str) -> str:
    """The key area's Chinese name, or the area as configured when it is not one of the usual ones."""
    return AREA_NAMES.get(area, area)


def area_label(area: str) -> str:
    if not area:
        return "—"
    zh = area_name(area)
    return zh if zh == area else f"{zh} {area}"


def reason_names(reason: str | None) -> tuple[str, str]:
    if not reason:
        return "", ""
    return REASON_NAMES.get(reason, (reason, reason))


def why_html(reason: str | None) -> str:
    zh, en = reason_names(reason)
    return f"<br>{html.escape(zh)} {html.escape(en)}" if zh else ""


def why_line(reason: str | None) -> str:
    zh, en = reason_names(reason)
    return f'<div class="why">原因 reason: {html.escape(zh)} {html.escape(en)}</div>' if zh else ""


def write_report(results: list[dict[str, Any]], thumbnails: dict[str, bytes], out: Path, school: str) -> Path:
    """Write the report into `out`; `results` are PatrolResult.as_json() dicts. Returns index.html's path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "thumbnails").mkdir(exist_ok=True)
    rows = []
    for result in results:
        camera = result["camera"]
        thumbnail = None
        if camera in thumbnails:
            thumbnail = f"thumbnails/{camera}.jpg"
            (out / thumbnail).write_bytes(thumbnails[camera])
        rows.append({**result, "thumbnail": thumbnail})
    (out / "patrol.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    with (out / "patrol.csv").open("w", encoding="utf-8-sig", newline="") as sink:  # BOM: Excel reads Chinese
        writer = csv.writer(sink)
        writer.writerow(
            [
                "camera",
                "name",
                "area",
                "area_zh",
                "verdict",
                "verdict_zh",
                "reason",
                "reason_zh",
                "source",
                "error",
                "thumbnail",
            ]
        )
        for row in rows:
            writer.writerow(
                [
                    row["camera"],
                    row["name"],
                    row["area"],
                    area_name(row["area"]),
                    row["verdict"],
                    VERDICT_NAMES.get(row["verdict"], (row["verdict"],))[0],
                    row.get("reason") or "",
                    reason_names(row.get("reason"))[0],
                    row["source"],
                    row.get("error") or "",
                    row["thumbnail"] or "",
                ]
            )
    faults = [r for r in rows if r["verdict"] != "ok"]
    cards = []
    for row in sorted(rows, key=lambda r: (r["verdict"] == "ok", r["camera"])):
        zh, en = VERDICT_NAMES.get(row["verdict"], (row["verdict"], row["verdict"]))
        picture = (
            f'<img src="{html.escape(row["thumbnail"])}" alt="{html.escape(row["name"])}">'
            if row["thumbnail"]
            else f'<div class="none">无画面 no picture{why_html(row.get("reason"))}</div>'
        )
        cards.append(
            f'<div class="cam">{picture}<div class="body"><div class="name">{html.escape(row["name"])} '
            f'<span class="v {html.escape(row["verdict"])}">{zh} {en}</span></div>'
            f"<div>{html.escape(row['camera'])} · {html.escape(area_label(row['area']))}</div>"
            f"{'' if row['thumbnail'] else why_line(row.get('reason'))}</div></div>"
        )
    when = datetime.now().strftime("%Y-%m-%d %H:%M")
    page = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>视频巡查报告 Video patrol report — {html.escape(school)}</title><style>{STYLE}</style></head><body>
<h1>视频巡查报告 · Video patrol report</h1>
<div class="sub">{html.escape(school)} · {when}</div>
<p class="summary"><span>摄像机 cameras: {len(rows)}</span><span>正常 OK: {len(rows) - len(faults)}</span>
<span>异常 faults: {len(faults)}</span></p>
<div class="grid">{"".join(cards)}</div>
<p class="sub">patrol.json · patrol.csv</p></body></html>"""
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
