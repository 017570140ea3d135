"""Write the README's table of exit codes from runtime/errors.py's EXIT_CODES (between its two markers).
`python scripts/exit_codes.py` rewrites README.md; `--check` only says whether it is current (exit 1 if not)."""

import pathlib
import sys

from ringrun.runtime.errors import exit_codes_table

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- exit codes: made by scripts/exit_codes.py -->\n", "<!-- end of exit codes -->\n"


def rewritten(text):
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    if not rest:
        raise SystemExit(f"{README}: no {BEGIN.strip()} marker")
    return head + BEGIN + exit_codes_table() + END + tail


def main(argv):
    text = README.read_text(encoding="utf-8")
    new = rewritten(text)
    if "--check" in argv:
        return 0 if new == text else 1
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
