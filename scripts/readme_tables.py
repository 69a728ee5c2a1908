"""Copy the summary table of docs/results.md and of docs/reproduce.md into docs/models.md, between its `results` and
`reproduce` markers (tables.copy_table). scripts/reproduce_results.sh runs it last; both documents are written by
`horses-humans experiment reproduce`. README links to docs/models.md rather than holding the tables itself.

    python scripts/readme_tables.py
"""

from pathlib import Path

from horses_humans.core.tables import copy_table

REPO = Path(__file__).resolve().parents[1]
TARGET = "docs/models.md"  # the hand-written page that shows both tables
TABLES = {"results": "docs/results.md", "reproduce": "docs/reproduce.md"}  # marker in TARGET -> document


def main() -> None:
    for marker, document in TABLES.items():
        if (REPO / document).exists():
            copy_table(REPO / document, REPO / TARGET, marker)
            print(f"copied the table of {document} into {TARGET}")


if __name__ == "__main__":
    main()
