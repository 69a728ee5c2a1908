"""Copy the summary table of docs/results.md and of docs/reproduce.md into README, between its `results` and
`reproduce` markers (tables.copy_table). scripts/reproduce_results.sh runs it last; both documents are written by
`horses-humans experiment reproduce`.

    python scripts/readme_tables.py
"""

from pathlib import Path

from horses_humans.core.tables import copy_table

REPO = Path(__file__).resolve().parents[1]
TABLES = {"results": "docs/results.md", "reproduce": "docs/reproduce.md"}  # README marker -> document


def main() -> None:
    for marker, document in TABLES.items():
        if (REPO / document).exists():
            copy_table(REPO / document, REPO / "README.md", marker)
            print(f"copied the table of {document} into README.md")


if __name__ == "__main__":
    main()
