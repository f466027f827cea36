"""`python -m stocksync.cli ...`, the same as the `stocksync` console script."""

from stocksync.cli import main

if __name__ == "__main__":
    main()
