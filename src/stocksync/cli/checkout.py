"""The stocksync checkout the CLI runs from (an editable install): the commands that drive
files shipped with the repository, not with the library (deploy/kafka/kafka.sh, sim/), look
for them here."""

from __future__ import annotations

from pathlib import Path

# src/stocksync/cli/checkout.py -> the repository root
CHECKOUT = Path(__file__).resolve().parents[3]
