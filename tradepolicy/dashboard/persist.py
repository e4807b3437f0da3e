"""Shareable and durable scenarios: the page's address, the browser's storage and TOML files.

- **Address.** The scenario being edited (market, stage, target and every setting,
  ``store.policy.snapshot()``) is written into the page's address as ``?market=<id>&s=<token>``,
  the token being JSON, zlib-compressed and URL-safe base64 (:func:`encode_state`,
  :func:`decode_state`). The address is replaced (never pushed) as the user edits, so that the
  browser's Back button leaves the page instead of stepping through every change.
- **Saved scenarios** are kept in the browser's ``localStorage`` (one entry per browser and
  server, every market's saved scenarios in it; :class:`BrowserBridge`). Kept in the browser
  rather than on the server: the dashboard has no login, so a server could only tell users
  apart by a cookie, would keep everybody's scenarios in its memory and would lose them on a
  restart; the browser keeps each user's own scenarios, across server restarts, at no cost to
  the server. Cookies are too small (4 kB, sent with every request).
- **Files.** The saved scenarios are downloaded as a scenario-set TOML file that
  ``tradepolicy run`` reads (:func:`scenario_set_toml`), and a scenario-set file is uploaded
  with the scenario loader's own checks and messages (:func:`read_uploaded_set`).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import textwrap
import tomllib
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import panel as pn
import param
import tomli_w
from panel.custom import JSComponent
from panel.viewable import Viewer

from tradepolicy.dashboard.caching import WARNINGS_LOCK
from tradepolicy.errors import InputError
from tradepolicy.scenario import Scenario, ScenarioSet, Target, scenario_set_from_dict

log = logging.getLogger(__name__)

#: the query parameter holding the edited scenario
URL_PARAM = "s"
#: version of the address token and of the stored scenarios (older or newer ones are refused)
VERSION = 1
#: the browser storage key of the saved scenarios
STORAGE_KEY = "tradepolicy.saved.v1"
#: longest token read from an address (a full snapshot takes about 600 characters)
MAX_TOKEN = 8_000
#: most bytes a token or the stored scenarios may expand to
MAX_JSON = 2_000_000
#: most saved scenarios kept per market
MAX_SAVED = 60
#: largest scenario file accepted for upload
MAX_UPLOAD = 1_000_000


class ShareError(ValueError):
    """An address token or stored state that cannot be used; the message is for the user."""


# -- the address ----------------------------------------------------------------------------
def encode_state(state: dict[str, Any]) -> str:
    """``state`` (JSON-able) as a compact URL-safe token: JSON, zlib, base64 without padding."""
    raw = json.dumps({"v": VERSION, **state}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(zlib.compress(raw.encode(), 9)).decode().rstrip("=")


def _inflate(data: bytes, limit: int) -> bytes:
    """zlib-decompress at most ``limit`` bytes (larger: :class:`ShareError`)."""
    d = zlib.decompressobj()
    out = d.decompress(data, limit)
    if d.unconsumed_tail or not d.eof:
        raise ShareError("it is cut short or too large")
    return out


def decode_state(token: str) -> dict[str, Any]:
    """The state an :func:`encode_state` token holds.

    Raises
    ------
    ShareError
        For anything but a whole token of this version: too long, not base64, not zlib, not a
        JSON object, another version, or a ``market`` that is not a name.
    """
    token = (token or "").strip()
    if not token:
        raise ShareError("it is empty")
    if len(token) > MAX_TOKEN:
        raise ShareError(f"it is longer than {MAX_TOKEN} characters")
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", token):
        raise ShareError("it holds characters a link never has")
    try:
        data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        state = json.loads(_inflate(data, MAX_JSON))
    except (binascii.Error, zlib.error, ValueError) as exc:
        if isinstance(exc, ShareError):
            raise
        raise ShareError("it is damaged or cut short") from None
    if not isinstance(state, dict):
        raise ShareError("it does not hold a scenario")
    if state.get("v") != VERSION:
        raise ShareError(f"it was made by another version of the dashboard (v={state.get('v')!r})")
    if not isinstance(state.get("market"), str):
        raise ShareError("it names no market")
    if not isinstance(state.get("settings", {}), dict):
        raise ShareError("its settings are not a table of values")
    state.pop("v")
    return state


# -- names in words -------------------------------------------------------------------------
#: longest display name
MAX_DISPLAY = 70


def _shorten(text: str, width: int = MAX_DISPLAY) -> str:
    return textwrap.shorten(text, width=width, placeholder="…")


def display_name(scenario: Scenario) -> str:
    """A scenario's name in words, from its description.

    The lead phrase before a colon ("Oxide-only club floor: the US, ...") when the description
    starts with one, else its first sentence shortened; without a description the identifier
    with spaces for ``_``.
    """
    text = " ".join(scenario.description.split())
    if not text:
        return scenario.name.replace("_", " ")
    head, colon, _rest = text.partition(": ")
    if colon and 0 < len(head) <= MAX_DISPLAY and not head.endswith((".", ";")):
        return head
    sentence = re.split(r"(?<=[a-z0-9)])[.;] ", text, maxsplit=1)[0].rstrip(".")
    return _shorten(sentence)


def with_title(title: str, description: str) -> str:
    """A description led by ``title`` (what :func:`display_name` reads back)."""
    title = " ".join(title.split()).rstrip(":")
    return f"{title}: {description}" if title and description else title or description


# -- scenario-set files ---------------------------------------------------------------------
def scenario_set_toml(
    market: str,
    scenarios: Sequence[Scenario],
    *,
    title: str = "",
    description: str = "",
    target: Target | None = None,
) -> str:
    """A scenario-set file (docs/inputs.md) of ``scenarios`` on ``market``, as TOML text.

    ``tradepolicy run`` and :func:`tradepolicy.load_scenarios` read it back to the same
    measures (floats are written exactly).
    """
    if not scenarios:
        raise ValueError("no scenario to write")
    doc: dict[str, Any] = {"market": market}
    if title:
        doc["title"] = title
    if description:
        doc["description"] = description
    if target is not None:
        doc["target"] = target.to_dict()
    doc["scenario"] = [s.to_dict() for s in scenarios]
    head = (
        "# Scenario set saved from the tradepolicy negotiator dashboard.\n"
        f"# Run it with: tradepolicy run <this file>  (market {market!r})\n"
    )
    return head + tomli_w.dumps(doc, multiline_strings=False)


def read_uploaded_set(
    data: bytes, filename: str, market_ref: str, market_id: str
) -> tuple[ScenarioSet, list[str]]:
    """Check an uploaded scenario-set file for the market shown; its input warnings in words.

    The file's ``market`` must name the market shown (its id, or a path to its file); the
    scenarios are checked on it by the scenario loader.

    Raises
    ------
    InputError
        Naming the file and each field with what is allowed (the loader's messages).
    """
    name = Path(filename or "upload.toml").name
    if len(data) > MAX_UPLOAD:
        raise InputError(name, [("", f"larger than {MAX_UPLOAD // 1000} kB")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(name, [("", "not a UTF-8 text file")]) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(name, [("", f"not valid TOML: {exc}")]) from None
    ref = doc.get("market")
    if isinstance(ref, str) and ref not in (market_id, market_ref):
        if Path(ref).stem != market_id:
            raise InputError(
                name,
                [
                    (
                        "market",
                        f"the file is for {ref!r}; this page shows {market_id!r}: open it first",
                    )
                ],
            )
    if doc.get("years") is not None:
        raise InputError(
            name,
            [
                (
                    "years",
                    "a pathway set (with `years`) runs with `tradepolicy run`; the dashboard "
                    "compares one-year scenario sets: leave `years` out",
                )
            ],
        )
    with WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sset = scenario_set_from_dict(doc, Path(name), market_ref)
    reserved = [
        (f"scenario[{i}].name", f"{s.name!r} is reserved in the dashboard; choose another name")
        for i, s in enumerate(sset.scenarios)
        if s.name == "current"
    ]
    if reserved:
        raise InputError(name, reserved)
    return sset, [str(w.message) for w in caught]


# -- the browser ----------------------------------------------------------------------------
class BrowserBridge(JSComponent):
    """Reads and writes the browser's ``localStorage`` and replaces the page's address.

    ``stored`` is set once by the browser when the page opens (the stored text, ``""`` when
    nothing is stored or storage is off); setting ``keep`` writes it to storage; setting
    ``query`` replaces the address's query (``history.replaceState``: no new history entry).
    """

    stored = param.String(default=None, allow_None=True, doc="Storage text read on load")
    keep = param.String(default="", doc="Text to store")
    query = param.String(default="", doc="Query of the page's address, without '?'")
    key = param.String(default=STORAGE_KEY, constant=True)

    _esm = """
    export function render({ model }) {
      let raw = null
      try { raw = window.localStorage.getItem(model.key) } catch (e) { raw = null }
      model.stored = raw === null ? "" : raw
      model.on("keep", () => {
        try { window.localStorage.setItem(model.key, model.keep) }
        catch (e) { console.warn("tradepolicy: scenarios not stored in this browser", e) }
      })
      const place = () => {
        if (!model.query) { return }
        const url = new URL(window.location.href)
        url.search = "?" + model.query
        window.history.replaceState(window.history.state, "", url.toString())
      }
      model.on("query", place)
      place()
      const el = document.createElement("span")
      el.className = "tp-bridge"
      return el
    }
    """

    def __init__(self, **params: Any) -> None:
        params.setdefault("width", 0)
        params.setdefault("height", 0)
        params.setdefault("margin", 0)
        super().__init__(**params)


class ShareLink(Viewer):
    """Keeps a store's edited scenario in the page's address and its saved scenarios in the
    browser; restores both when a page opens (``?s=`` of a served page's address)."""

    store = param.Parameter(doc="The session's DashboardStore")
    address = param.Boolean(
        default=None,
        allow_None=True,
        doc="Write the page's address (default: only in a served page, not in a notebook)",
    )

    def __init__(self, token: str | None = None, **params: Any) -> None:
        super().__init__(**params)
        if self.address is None:
            doc = pn.state.curdoc
            self.address = doc is not None and doc.session_context is not None
        self.bridge = BrowserBridge()
        self._restored = False
        s = self.store
        if token is None:
            args = pn.state.session_args or {}
            values = args.get(URL_PARAM) or []
            token = values[0].decode(errors="replace") if values else None
        if token is not None:
            s.apply_share_token(token)
        self.bridge.param.watch(self._on_stored, "stored")
        s.param.watch(self._on_saved, "saved")
        s.param.watch(self._on_state, ["current", "stage", "target", "uncertainty", "draws"])
        # the settings themselves too: on the 2030 tab the one-year outcome ("current")
        # follows a change only in the next pause
        s.policy.param.watch(self._on_state, [p for p in s.policy.param if p != "name"])
        self._on_state()

    def _on_state(self, *_events: Any) -> None:
        """The address of the scenario being edited (replaced, not pushed)."""
        if not self.address or getattr(self.store, "_applying_market", False):
            return  # (a market being loaded: its outcome, published once, sets it)
        try:
            self.bridge.query = self.store.share_query()
        except Exception:  # the address is a convenience: never break an edit
            log.exception("the page's address could not be updated")

    def _on_stored(self, event: Any) -> None:
        if self._restored:
            return
        self._restored = True
        if event.new:
            self.store.restore_saved_text(event.new)
        self._on_saved()

    def _on_saved(self, *_events: Any) -> None:
        if not self._restored:  # not before what the browser kept has been read
            return
        try:
            self.bridge.keep = self.store.saved_text()
        except Exception:
            log.exception("saved scenarios not stored in the browser")

    def __panel__(self) -> pn.viewable.Viewable:
        return self.bridge


__all__ = [
    "MAX_SAVED",
    "STORAGE_KEY",
    "URL_PARAM",
    "BrowserBridge",
    "ShareError",
    "ShareLink",
    "decode_state",
    "display_name",
    "encode_state",
    "read_uploaded_set",
    "scenario_set_toml",
    "with_title",
]
