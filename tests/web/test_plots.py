"""The server-side SVG of people over the last 24 hours."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from xml.etree import ElementTree

from bot.plots import people_svg

NOW = datetime(2026, 11, 27, 12, 30)
SVG = "{http://www.w3.org/2000/svg}"


def test_one_point_per_count_within_the_window_and_a_line_through_them() -> None:
    points = [(NOW - timedelta(hours=h), float(h % 4)) for h in (30, 20, 10, 5, 1)]
    svg = ElementTree.fromstring(str(people_svg(points, now=NOW)))
    circles = svg.findall(f"{SVG}circle")
    assert len(circles) == 4  # 30 h ago is outside the last 24 hours
    assert [c.find(f"{SVG}title").text for c in circles] == ["16:30 UTC: 0", "02:30 UTC: 2", "07:30 UTC: 1",
                                                             "11:30 UTC: 1"]
    xs = [float(c.get("cx")) for c in circles]
    assert xs == sorted(xs) and xs[-1] < 360  # left to right in time, within the picture
    line = svg.find(f"{SVG}path[@class='line']")
    assert line.get("d").count("L") == 3
    assert svg.get("aria-label") == "People over the last 24 hours: peak 2 at 02:30 UTC"


def test_axis_labels_every_six_hours_and_integer_counts() -> None:
    svg = str(people_svg([(NOW - timedelta(hours=2), 7)], now=NOW))
    assert re.findall(r">(\d\d:00)<", svg) == ["18:00", "00:00", "06:00", "12:00"]
    counts = re.findall(r'class="tick" x="\d+" y="[\d.]+" text-anchor="end">(\d+)<', svg)
    assert counts == ["0", "2", "4", "6", "8"]


def test_empty_window_says_so_and_labels_are_escaped() -> None:
    svg = str(people_svg([], now=NOW, label='Back <door> & "yard"'))
    assert "No detections in the last 24 hours" in svg and "<circle" not in svg
    assert "Back &lt;door&gt; &amp; &#34;yard&#34;" in svg
    ElementTree.fromstring(svg)  # well-formed
