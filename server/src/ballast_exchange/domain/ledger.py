"""Double-entry balances in micro-USDC.

Every movement takes an amount out of one ledger account (the debit) and puts it into another
(the credit), so the sum over all ledger accounts is always zero and, leaving out ``external``,
equals deposits minus withdrawals. Ledger accounts are named by string keys:

- ``cash:{account}``: available to trade or withdraw
- ``orders:{account}``: reserved for the account's open orders
- ``collateral:{account}:{market}``: locked behind a position (its cost basis, ``margin_used``)
- ``clearing:{market}``: realised PnL passed between traders; with the collateral accounts it
  holds exactly open interest × (cap − floor), and is zero once the market has settled
- ``fees:{market}``: fee income net of maker rebates
- ``external``: the world outside (deposits and withdrawals)
"""

from __future__ import annotations

EXTERNAL = "external"


def cash_key(account_id: str) -> str:
    return f"cash:{account_id}"


def orders_key(account_id: str) -> str:
    return f"orders:{account_id}"


def collateral_key(account_id: str, market_id: str) -> str:
    return f"collateral:{account_id}:{market_id}"


def clearing_key(market_id: str) -> str:
    return f"clearing:{market_id}"


def fees_key(market_id: str) -> str:
    return f"fees:{market_id}"


class Ledger:
    __slots__ = ("balances",)

    def __init__(self) -> None:
        self.balances: dict[str, int] = {}

    def move(self, debit: str, credit: str, amount: int) -> None:
        balances = self.balances
        balances[debit] = balances.get(debit, 0) - amount
        balances[credit] = balances.get(credit, 0) + amount

    def balance(self, key: str) -> int:
        return self.balances.get(key, 0)

    def total(self) -> int:
        """Zero, always: what double entry guarantees (an invariant the tests check)."""
        return sum(self.balances.values())
