"""An order as the engine holds it while it lives."""

from __future__ import annotations

from .types import OrderStatus, OrderType, SelfTradePrevention, Side, TimeInForce


class Order:
    """A live order. ``remaining`` is what still rests or may trade; ``filled`` what has traded.

    ``filled + remaining`` equals ``size``, except where a self-trade ``decrement`` or an amend
    down took contracts away without trading (``size`` then tracks the amended total).
    """

    __slots__ = (
        "account_id",
        "client_order_id",
        "created_at",
        "expire_at",
        "filled",
        "is_buy",
        "market_id",
        "order_group_id",
        "order_id",
        "order_type",
        "post_only",
        "price",
        "reduce_only",
        "remaining",
        "side",
        "size",
        "status",
        "stp",
        "time_in_force",
        "unit_fee",
        "unit_lock",
    )

    def __init__(
        self,
        order_id: int,
        account_id: str,
        market_id: str,
        side: Side,
        order_type: OrderType,
        price: int,
        size: int,
        time_in_force: TimeInForce,
        expire_at: int | None,
        post_only: bool,
        reduce_only: bool,
        client_order_id: str | None,
        stp: SelfTradePrevention,
        created_at: int,
        order_group_id: str | None = None,
    ) -> None:
        self.order_id = order_id
        self.account_id = account_id
        self.market_id = market_id
        self.side = side
        self.is_buy = side is Side.BUY
        self.order_type = order_type
        self.price = price
        self.size = size
        self.remaining = size
        self.filled = 0
        self.time_in_force = time_in_force
        self.expire_at = expire_at
        self.post_only = post_only
        self.reduce_only = reduce_only
        self.client_order_id = client_order_id
        self.order_group_id = order_group_id
        self.stp = stp
        self.status = OrderStatus.OPEN
        self.created_at = created_at
        # Per-contract reservation, fixed by the price: collateral if it opens, fee either way.
        self.unit_lock = 0
        self.unit_fee = 0

    def __repr__(self) -> str:
        return (
            f"Order({self.order_id} {self.account_id} {self.side} {self.remaining}/{self.size}"
            f" @{self.price} {self.status})"
        )
