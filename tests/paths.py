"""Where the tests find the project's read-only companion folder: `shared/` beside the repository
(the law file, the SEN2 sample), as laid out for developers and for CI."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMPANION = REPO.parent / "shared"
SEN2_SAMPLE = COMPANION / "samples" / "sen2" / "SEN2-2024-mockup.xml"
LAW_FILE = COMPANION / "law" / "england.md"
