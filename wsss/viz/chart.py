"""Bar charts of a recipe comparison as a PNG, drawn with Pillow (no plotting library needed).

Top panel: the final mIoU of each recipe. Bottom panel: the IoU of every class, one bar per recipe in
each class group. Values in percent (0–100 axis), each recipe one colour, a legend on top.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from PIL import Image, ImageDraw, ImageFont

from wsss.io import atomic_path

#: distinct colours for up to 10 recipes (cycled beyond)
COLORS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
          (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))


def _font() -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=12)
    except TypeError:  # Pillow < 10.1: no size
        return ImageFont.load_default()


def _axis(draw: ImageDraw.ImageDraw, left: int, top: int, width: int, height: int, font) -> None:
    for value in range(0, 101, 20):
        y = top + height - int(height * value / 100)
        draw.line([(left, y), (left + width, y)], fill=(225, 225, 225))
        draw.text((left - 6, y), str(value), fill=(80, 80, 80), font=font, anchor="rm")
    draw.line([(left, top), (left, top + height)], fill=(0, 0, 0))
    draw.line([(left, top + height), (left + width, top + height)], fill=(0, 0, 0))


def comparison_chart(path: str | Path, final_miou: Mapping[str, float | None],
                     per_class: Mapping[str, Mapping[str, float | None]], class_names: Sequence[str],
                     title: str = "") -> Path:
    """Write the chart to ``path`` (PNG; written to a temporary name, then renamed) and return it.

    ``final_miou``: recipe -> final mIoU (None: not available, no bar); ``per_class``: recipe -> class
    name -> IoU; ``class_names``: the classes in display order.
    """
    recipes = list(final_miou)
    font = _font()
    group = max(len(recipes), 1) * 7 + 8
    width = max(640, 70 + group * len(class_names) + 20)
    height = 620
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.text((width // 2, 12), title or "final mIoU per recipe and IoU per class", fill=(0, 0, 0), font=font,
              anchor="mt")
    x = 70
    for index, recipe in enumerate(recipes):  # legend
        color = COLORS[index % len(COLORS)]
        draw.rectangle([x, 32, x + 12, 44], fill=color)
        draw.text((x + 16, 38), recipe, fill=(0, 0, 0), font=font, anchor="lm")
        x += 24 + int(draw.textlength(recipe, font=font))

    # top: final mIoU per recipe
    left, top, panel_w, panel_h = 70, 64, width - 90, 180
    _axis(draw, left, top, panel_w, panel_h, font)
    bar = min(60, panel_w // max(len(recipes) * 2, 1))
    for index, recipe in enumerate(recipes):
        value = final_miou[recipe]
        cx = left + int(panel_w * (index + 0.5) / max(len(recipes), 1))
        if value is not None:
            y = top + panel_h - int(panel_h * max(0.0, min(100.0, value)) / 100)
            draw.rectangle([cx - bar // 2, y, cx + bar // 2, top + panel_h], fill=COLORS[index % len(COLORS)])
            draw.text((cx, y - 3), f"{value:.1f}", fill=(0, 0, 0), font=font, anchor="mb")
        draw.text((cx, top + panel_h + 4), recipe, fill=(0, 0, 0), font=font, anchor="mt")

    # bottom: IoU per class, grouped by class
    top2, panel_h2 = 300, 240
    _axis(draw, left, top2, panel_w, panel_h2, font)
    step = panel_w / max(len(class_names), 1)
    for c, name in enumerate(class_names):
        gx = left + int(step * c) + 4
        for index, recipe in enumerate(recipes):
            value = (per_class.get(recipe) or {}).get(name)
            if value is None:
                continue
            x0 = gx + index * 7
            y = top2 + panel_h2 - int(panel_h2 * max(0.0, min(100.0, value)) / 100)
            draw.rectangle([x0, y, x0 + 5, top2 + panel_h2], fill=COLORS[index % len(COLORS)])
        label = Image.new("RGBA", (80, 14), (255, 255, 255, 0))
        ImageDraw.Draw(label).text((78, 7), name[:12], fill=(0, 0, 0), font=font, anchor="rm")
        rotated = label.rotate(60, expand=True)
        image.paste(rotated, (int(left + step * (c + 0.5) - rotated.width + 6), top2 + panel_h2 + 2), rotated)
    with atomic_path(path) as temporary:
        image.save(temporary, format="PNG")
    return Path(path)
