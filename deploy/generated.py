"""The command line every generator of committed files under deploy/ shares.

    python -m deploy.<generator>          # rewrite its files
    python -m deploy.<generator> --check  # exit 1 if the committed files are out of date
"""
import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write(wanted, obsolete=()):
    """Write `wanted` (path -> text) and remove the `obsolete` files."""
    for path in obsolete:
        path.unlink()
        print(f"removed {path.relative_to(ROOT)}")
    for path, text in sorted(wanted.items()):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    under = Path(os.path.commonpath([path.parent for path in wanted]))
    print(f"wrote {len(wanted)} files under {under.relative_to(ROOT)}/")


def main(module_name, argv, rendered, stale, obsolete=lambda wanted: ()):
    """`rendered()`: path -> text as it should be committed; `stale()`: the committed files that
    differ from it; `obsolete(wanted)`: files of the generator's that it no longer makes."""
    module = sys.modules[module_name]
    prog = f"python -m {module.__spec__.name if module.__spec__ else module_name}"
    parser = argparse.ArgumentParser(prog=prog, description=module.__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only say whether the committed files are up to date")
    args = parser.parse_args(argv)
    if args.check:
        out_of_date = stale()
        for path in out_of_date:
            print(f"out of date: {path.relative_to(ROOT)} (run {prog})")
        return 1 if out_of_date else 0
    wanted = rendered()
    write(wanted, obsolete(wanted))
    return 0
