"""Generated reference pages for the documentation site (mkdocs-gen-files).

Placeholder until the generator of the measure and results reference lands: it writes
``reference/measures.md`` and ``reference/results.md`` with a short note so that the site's nav
entries resolve and the strict build passes. The real script replaces this file.
"""

import mkdocs_gen_files

for path, title in (
    ("reference/measures.md", "Reference: measures"),
    ("reference/results.md", "Reference: results"),
):
    with mkdocs_gen_files.open(path, "w") as f:
        f.write(f"# {title}\n\nThis page is generated from the code; the generator is pending.\n")
