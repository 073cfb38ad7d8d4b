"""Dollars as people read them: the one spelling of every money figure the CLI shows.

``kling jobs``, ``kling batch`` (its dry run and --max-cost refusals), estimates and budget
messages all format through :func:`format_usd`, so the same amount reads the same everywhere.
Per-second and per-run *rates* from a price table (``$0.336/s``) are not amounts and keep their
published precision.
"""

from __future__ import annotations


def format_usd(usd: float) -> str:
    """``$1,234.50``: thousands separators and cents; a non-zero amount under a cent keeps four
    decimals (``$0.0042``), and one too small even for those reads ``<$0.0001``, so no charge
    reads as free."""
    sign = "-" if usd < 0 else ""  # a refund reads -$1.00, never $-1.00; -0.0 reads $0.00
    amount = abs(usd)
    if 0 < amount < 0.00005:
        return f"{sign}<$0.0001"
    if 0 < amount < 0.01:
        return f"{sign}${amount:.4f}"
    return f"{sign}${amount:,.2f}" if amount else "$0.00"
