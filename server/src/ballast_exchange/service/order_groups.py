"""Order groups: a contract limit over a rolling window (docs/adr/0021-order-groups.md).

An account creates a group with ``max_filled_size`` contracts over a rolling ``window_s``, and
places orders in it (``order_group_id``, which the engine carries on the order and its
acceptance). Every contract an order of the group fills, as taker or as maker, counts for
``window_s`` seconds. When the count reaches the limit the group *triggers*: every open order
in it is canceled, each journaled with the reason ``order_group_limit``, and placements in it
are refused (``ORDER_GROUP_TRIGGERED``) until it is reset.

The group is a policy of the exchange (``Exchange.policies``): it refuses a placement before
the engine sees it, and hears of every command's events before they are stored. The trigger is
decided there, with the command whose fills reached the limit, and stored in that command's
commit; the cancels run right after that command, before any other, so no further order of the
group can trade in between. A single match can still fill past the limit: the count is checked
after each command, not inside the matching.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from ..domain import CancelReason, DomainError
from ..domain.commands import CancelOrder, Command, PlaceOrder
from ..domain.events import OrderAccepted, OrderClosed, Trade
from ..store import order_groups as store
from ..store.order_groups import ACTIVE, TRIGGERED, GroupTrigger, OrderGroupRecord
from ..store.projection import JournalItem
from .exchange import at_time
from .reads import Reads
from .trading import Trading

log = logging.getLogger(__name__)
T = TypeVar("T")

MIN_WINDOW_S = 1
MAX_WINDOW_S = 86_400
DEFAULT_WINDOW_S = 15  # Kalshi's window
MAX_GROUPS_PER_ACCOUNT = 100
NOTHING: tuple[Command, ...] = ()


class Group:
    """A group as it lives: its record, the fills in its window and its open orders."""

    __slots__ = ("filled", "fills", "members", "record")

    def __init__(self, record: OrderGroupRecord) -> None:
        self.record = record
        self.fills: deque[tuple[int, int]] = deque()  # (time, contracts), oldest first
        self.filled = 0  # contracts in ``fills``
        self.members: set[int] = set()  # its open orders

    def add(self, time: int, size: int) -> bool:
        """Count a fill at ``time``; whether the group, still active, has now reached its
        limit."""
        self.fills.append((time, size))
        self.filled += size
        self.prune(time)
        return self.record.status == ACTIVE and self.filled >= self.record.max_filled_size

    def prune(self, now: int) -> None:
        """Forget the fills ``window_ms`` or more before ``now``."""
        edge = now - self.record.window_ms
        fills = self.fills
        while fills and fills[0][0] <= edge:
            self.filled -= fills.popleft()[1]

    def clear(self) -> None:
        self.fills.clear()
        self.filled = 0


@dataclass(frozen=True, slots=True)
class GroupState:
    """A group as a reply shows it."""

    record: OrderGroupRecord
    filled_in_window: int
    open_orders: int


@dataclass(frozen=True, slots=True)
class DeletedGroup:
    group_id: str
    canceled: tuple[int, ...]


def not_found(group_id: str) -> DomainError:
    return DomainError(
        "ORDER_GROUP_NOT_FOUND", f"no order group {group_id!r}", {"order_group_id": group_id}
    )


class OrderGroups:
    def __init__(self, reads: Reads, trading: Trading) -> None:
        self.reads = reads
        self.trading = trading
        self.exchange = reads.exchange
        self.groups: dict[str, Group] = {}
        self.members: dict[int, Group] = {}  # every open order placed in a group
        # Writes go one at a time, each storing the group as it is when it starts; a reply
        # that shows groups waits its turn, so it never shows a change not yet stored.
        self._writing = asyncio.Lock()

    # ---- the exchange's policy ----------------------------------------------------------------

    def admit(self, command: Command) -> None:
        """Refuse a placement in a group that is not the account's, or that triggered."""
        if type(command) is not PlaceOrder or command.order_group_id is None:
            return
        group = self.groups.get(command.order_group_id)
        if group is None or group.record.account_id != command.account_id:
            raise not_found(command.order_group_id)
        record = group.record
        if record.status == TRIGGERED:
            raise DomainError(
                "ORDER_GROUP_TRIGGERED",
                "the order group reached its contract limit; reset it to place orders in it",
                {"order_group_id": record.group_id, "max_filled_size": record.max_filled_size},
            )

    def executed(self, item: JournalItem) -> Sequence[Command]:
        """Count the fills of grouped orders; trigger each group that reached its limit (stored
        with ``item``) and return the cancels of its open orders."""
        command = item.command
        members = self.members
        if not members and (type(command) is not PlaceOrder or command.order_group_id is None):
            return NOTHING
        reached: list[Group] = []
        for e in item.events:
            kind = type(e)
            if kind is Trade:
                assert isinstance(e, Trade)
                for order_id in (e.maker_order_id, e.taker_order_id):
                    group = members.get(order_id)
                    if group is not None and group.add(e.time, e.size) and group not in reached:
                        reached.append(group)
            elif kind is OrderAccepted:
                assert isinstance(e, OrderAccepted)
                found = None if e.order_group_id is None else self.groups.get(e.order_group_id)
                if found is not None:
                    members[e.order_id] = found
                    found.members.add(e.order_id)
            elif kind is OrderClosed:
                assert isinstance(e, OrderClosed)
                left = members.pop(e.order_id, None)
                if left is not None:
                    left.members.discard(e.order_id)
        if not reached:
            return NOTHING
        triggers = []
        cancels: list[Command] = []
        for group in reached:
            triggers.append(GroupTrigger(self._trigger(group, item.time), group.filled))
            cancels += self._cancels(group)
        item.group_triggers = tuple(triggers)
        return cancels

    def _trigger(self, group: Group, now: int) -> OrderGroupRecord:
        record = group.record
        group.record = replace(
            record, status=TRIGGERED, triggered_at=now, revision=record.revision + 1
        )
        log.info(
            "order group %s of %s triggered: %d contracts filled in %d s (limit %d); "
            "canceling %d orders",
            record.group_id,
            record.account_id,
            group.filled,
            record.window_ms // 1000,
            record.max_filled_size,
            len(group.members),
        )
        return group.record

    @staticmethod
    def _cancels(group: Group) -> list[Command]:
        account_id = group.record.account_id
        return [
            CancelOrder(0, account_id, order_id, CancelReason.ORDER_GROUP_LIMIT)
            for order_id in sorted(group.members)
        ]

    # ---- requests -----------------------------------------------------------------------------

    async def create(self, account_id: str, max_filled_size: int, window_s: int) -> GroupState:
        """A new active group, answered once it is stored."""
        if not MIN_WINDOW_S <= window_s <= MAX_WINDOW_S:
            raise DomainError(
                "INVALID_REQUEST",
                f"window_s must be {MIN_WINDOW_S} to {MAX_WINDOW_S} seconds",
                {"field": "window_s"},
            )
        if max_filled_size < 1:
            raise DomainError(
                "INVALID_REQUEST",
                "max_filled_size must be at least 1",
                {"field": "max_filled_size"},
            )
        self.reads.require_account(account_id)
        if len(self._of(account_id)) >= MAX_GROUPS_PER_ACCOUNT:
            raise DomainError(
                "INVALID_REQUEST",
                f"an account may have {MAX_GROUPS_PER_ACCOUNT} order groups; delete one first",
                {"field": "order_group", "max_order_groups": MAX_GROUPS_PER_ACCOUNT},
            )
        now = self.exchange.clock()
        record = OrderGroupRecord(
            group_id=f"grp_{secrets.token_hex(8)}",
            account_id=account_id,
            max_filled_size=max_filled_size,
            window_ms=window_s * 1000,
            status=ACTIVE,
            created_at=now,
            triggered_at=None,
            reset_at=None,
            first_trade_id=self.reads.next_trade_id,
            revision=1,
        )
        group = Group(record)
        async with self._writing:
            await self.reads.write(store.insert_group, record)
        # Known only once stored: no order can be placed in a group a crash could lose.
        self.groups[record.group_id] = group
        return self._state(group, now)

    async def reset(self, account_id: str, group_id: str) -> GroupState:
        """Start the group's count afresh and let it take orders again; answered once stored."""
        group = self._own(account_id, group_id)
        now = self.exchange.clock()
        record = group.record
        group.record = replace(
            record,
            status=ACTIVE,
            triggered_at=None,
            reset_at=now,
            first_trade_id=self.reads.next_trade_id,
            revision=record.revision + 1,
        )
        group.clear()
        state = self._state(group, now)
        await self._store(group)
        return state

    async def delete(self, account_id: str, group_id: str) -> DeletedGroup:
        """Cancel the group's open orders and forget it; answered once both are stored."""
        group = self._own(account_id, group_id)
        del self.groups[group_id]  # no order can join it from here on
        pending = [
            (order_id, self.trading.cancel(account_id, order_id))
            for order_id in sorted(group.members)
        ]
        canceled = []
        for order_id, cancel in pending:
            try:
                await cancel.result()
            except DomainError:
                continue  # filled or canceled meanwhile
            canceled.append(order_id)
        async with self._writing:
            await self.reads.write(store.delete_group, group_id)
        return DeletedGroup(group_id, tuple(canceled))

    def get(self, account_id: str, group_id: str) -> GroupState:
        return self._state(self._own(account_id, group_id), self.exchange.clock())

    def of_account(self, account_id: str) -> list[GroupState]:
        """The account's groups, oldest first."""
        now = self.exchange.clock()
        return [self._state(g, now) for g in self._of(account_id)]

    async def state_of(self, account_id: str, group_id: str) -> GroupState:
        """One of the account's groups, once every change it shows is stored."""
        return await self.settled(lambda: self.get(account_id, group_id))

    async def states_of(self, account_id: str) -> list[GroupState]:
        """The account's groups, oldest first, once every change they show is stored."""
        return await self.settled(lambda: self.of_account(account_id))

    async def settled(self, render: Callable[[], T]) -> T:
        """Render now; answer once every change it may show is stored (writes of groups and
        the commits that triggered them)."""
        result = render()
        async with self._writing:
            pass
        await self.exchange.barrier()
        return result

    def _own(self, account_id: str, group_id: str) -> Group:
        group = self.groups.get(group_id)
        if group is None or group.record.account_id != account_id:
            raise not_found(group_id)
        return group

    def _of(self, account_id: str) -> list[Group]:
        found = [g for g in self.groups.values() if g.record.account_id == account_id]
        found.sort(key=lambda g: (g.record.created_at, g.record.group_id))
        return found

    @staticmethod
    def _state(group: Group, now: int) -> GroupState:
        group.prune(now)
        return GroupState(group.record, group.filled, len(group.members))

    async def _store(self, group: Group) -> None:
        async with self._writing:
            if self.groups.get(group.record.group_id) is group:
                await self.reads.write(store.update_groups, [group.record])

    # ---- recovery -----------------------------------------------------------------------------

    async def recover(self) -> None:
        """Load the stored groups and their open orders, count the fills still in each active
        group's window, and settle what a crash left undone: a group whose window holds its
        limit triggers now, and a triggered group's open orders are canceled."""
        records = await self.reads.stored(store.stored_groups)
        if not records:
            return
        groups = self.groups
        for record in records:
            groups[record.group_id] = Group(record)
        accounts = {record.account_id for record in records}
        for account_id, order_id, group_id in self.reads.grouped_open_orders(accounts):
            group = groups.get(group_id)
            if group is not None and group.record.account_id == account_id:
                self.members[order_id] = group
                group.members.add(order_id)
        now = self.exchange.clock()
        for account_id in sorted(accounts):
            await self._count_window(now, [g for g in self._of(account_id) if _active(g)])
        triggered = 0
        for group in list(groups.values()):
            if _active(group) and group.filled >= group.record.max_filled_size:
                self._trigger(group, now)
                await self._store(group)
                triggered += 1
            if not _active(group) and group.members:
                await self._cancel_members(group)
        log.info(
            "recovered %d order groups (%d open orders in them; %d triggered at recovery)",
            len(groups),
            len(self.members),
            triggered,
        )

    async def _count_window(self, now: int, active: list[Group]) -> None:
        if not active:
            return
        account_id = active[0].record.account_id
        since = now - max(g.record.window_ms for g in active)
        first = await self.reads.stored(store.first_trade_after, since)
        if first is None:
            return
        first = max(first, min(g.record.first_trade_id for g in active))
        by_id = {g.record.group_id: g for g in active}
        for group_id, trade_id, time, size in await self.reads.stored(
            store.window_fills, account_id, first
        ):
            group = by_id.get(group_id)
            if group is not None and trade_id >= group.record.first_trade_id:
                group.fills.append((time, size))
                group.filled += size
        for group in active:
            group.prune(now)

    async def _cancel_members(self, group: Group) -> None:
        commands = self._cancels(group)
        for command in commands:
            with contextlib.suppress(DomainError):  # no longer open
                await self.exchange.submit(at_time(command))
        if commands:
            log.info(
                "canceled %d orders of triggered order group %s",
                len(commands),
                group.record.group_id,
            )


def _active(group: Group) -> bool:
    return group.record.status == ACTIVE
