"""Allow ``python -m aslmig``."""

from aslmig.cli.run import entry_point

if __name__ == "__main__":
    entry_point()
