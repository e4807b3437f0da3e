"""What the browser tests do on the dashboard page: read a KPI, type into a box, add a measure,
tell whether a box is inside the viewport."""

from __future__ import annotations

from playwright.sync_api import Page, expect


def kpi(page: Page, key: str):
    """The value of KPI card ``key`` (e.g. ``club_price``)."""
    return page.locator(f'[data-kpi="{key}"] [data-kpi-value]')


def set_input(page: Page, css: str, text: str) -> None:
    """Type ``text`` into the first input under ``css`` and commit it with Enter."""
    box = page.locator(f"{css} input").first
    box.fill(text)
    box.press("Enter")


def add_measure(page: Page, label: str, timeout: float = 15_000) -> None:
    """Add a measure with the editor: choose it under "Add a measure" (which adds it); wait
    (``timeout`` ms) for its card."""
    cards = page.locator(".tp-measure")
    n = cards.count()
    page.locator(".tp-add-type select").select_option(label=label)
    expect(cards).to_have_count(n + 1, timeout=timeout)


def inside(box: dict | None, width: int, height: int) -> bool:
    """Whether a bounding box lies wholly inside the viewport (no scrolling needed)."""
    return (
        box is not None
        and box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= width + 0.5
        and box["y"] + box["height"] <= height + 0.5
    )
