"""Generated reference pages of the documentation site (mkdocs-gen-files).

Writes ``reference/measures.md`` (every registered measure type, its fields and caveats) and
``reference/results.md`` (the static, pathway and risk result variables) from the code at
build time (``tradepolicy.docs_reference``), so the reference cannot drift from it.
"""

import mkdocs_gen_files

from tradepolicy.docs_reference import measures_page, results_page

for path, page, source in (
    ("reference/measures.md", measures_page, "tradepolicy/measures/__init__.py"),
    ("reference/results.md", results_page, "tradepolicy/data/result_fields.csv"),
):
    with mkdocs_gen_files.open(path, "w") as f:
        f.write(page())
    mkdocs_gen_files.set_edit_path(path, source)
