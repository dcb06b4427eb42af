"""Tunedrop command-line interface."""


def main() -> None:
    raise SystemExit("not yet")
