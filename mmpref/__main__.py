"""`python -m mmpref ...` and `accelerate launch -m mmpref ...` enter the CLI here."""

from mmpref.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
