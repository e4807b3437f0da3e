"""The market pages of the documentation site (mkdocs-gen-files), generated from the files.

For every shipped market (``tradepolicy.list_markets()``, chain stages included) writes
``markets/<id>.md``: the hand-written page ``docs/markets/<id>.md`` (what the market is, how its
data were built, the calibration estimates that ``tradepolicy calibrate`` writes between its
markers) with the line ``<!-- market-file -->`` replaced by a section generated from the market
file as loaded (base data, shares, prices, tariffs, elasticities, chain links, sources); a market
without a hand-written page gets a page of its description and that section. Also writes
``markets/index.md`` from the shipped markets and chains. The figures on the site are therefore
the model's own and cannot drift from its files (``tradepolicy.docs_reference``).

A hand-written page without the marker, or a page for a market that is not shipped, fails the
build.
"""

from pathlib import Path

import mkdocs_gen_files

from tradepolicy.docs_reference import market_page, markets_index_page
from tradepolicy.market import list_markets, load_market

PAGES = Path("docs/markets")

shipped = list_markets()
orphans = sorted(p.stem for p in PAGES.glob("*.md") if p.stem != "index" and p.stem not in shipped)
if orphans:
    raise SystemExit(f"docs/markets/ has pages of markets that are not shipped: {orphans}")
for mid in shipped:
    page = PAGES / f"{mid}.md"
    text = page.read_text(encoding="utf-8") if page.exists() else None
    path = f"markets/{mid}.md"
    with mkdocs_gen_files.open(path, "w") as f:
        f.write(market_page(load_market(mid), text))
    mkdocs_gen_files.set_edit_path(path, f"models/equilibrium/{mid}.toml")

with mkdocs_gen_files.open("markets/index.md", "w") as f:
    f.write(markets_index_page())
