# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False, infer_types=False, embedsignature=False
"""The compiled engine: the reference engine's rules (engine.py, state.py, matching.py,
order_entry.py, settling.py, position.py, book.py, ledger.py) ported to typed ``cdef`` classes.

Twins, not forks: every rule here is the reference's, in the same order, with the same events
(the Python dataclasses of ``domain/events.py``), the same rejections (``DomainError`` with the
same code, message and details) and the same snapshot. Where the reference reads a dict, this
reads a field; where it does arithmetic on Python ints, this does it on 64-bit integers, or on
128-bit ones where a product could pass 2⁶³ (fees on a notional, position running sums).
Validation of command fields runs on the Python objects first, so an ill-typed field is the
reference's ``DomainError`` and never a ``TypeError`` or ``OverflowError``.

The Python-visible object graph (``engine.markets[m].book.bids[p].orders``, ``position.buys``,
``engine.ledger.balances``...) has the reference's names and shapes: read-only, some of it built
on demand (``docs/adr/0008-compiled-engine.md``).
"""

cimport cython
from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.long cimport PyLong_AsLongLongAndOverflow
from libc.stdlib cimport calloc, malloc, realloc, free
from libc.string cimport memcpy, memmove
from cpython cimport array as carray

import array
import collections.abc
import dataclasses
import heapq

from ballast_exchange.domain import commands as cmd
from ballast_exchange.domain import events as ev
from ballast_exchange.domain.errors import DomainError, ErrorCode, invalid
from ballast_exchange.domain.market import Settlement
from ballast_exchange.domain.state import (
    MAX_AMOUNT,
    MAX_CLIENT_ORDER_ID,
    MAX_CONTRACT_VALUE,
    MAX_FEE_BPS,
    MAX_ORDER_GROUP_ID,
    MAX_SIZE,
    MAX_TIME_MS,
    MICRO,
    MIN_TICK_VALUE,
    parse_enum,
)
from ballast_exchange.domain import types as _types
from ballast_exchange.domain.types import (
    MARKET_TRANSITIONS,
    CancelReason,
    MarketKind,
    MarketStatus,
    OrderStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
)

cdef extern from *:
    """
    typedef __int128 ballast_i128;
    #ifndef BALLAST_SOURCE_SHA256
    #define BALLAST_SOURCE_SHA256 ""
    #endif
    static const char *ballast_source_sha256 = BALLAST_SOURCE_SHA256;
    """
    # Cython must never convert this type to a Python object itself: see _py128.
    ctypedef long long i128 "ballast_i128"
    const char *ballast_source_sha256

cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        const char *name
        int type
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef *d_member
    object _PyObject_GC_New(PyTypeObject *t)
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    void *PyUnicode_DATA(object o)
    PyObject *PyList_GET_ITEM(object list, Py_ssize_t i)
    PyObject *_new_int "PyLong_FromLongLong"(long long v)

SOURCE_SHA256 = ballast_source_sha256.decode("ascii")

cdef long long BPS = 10_000
cdef long long C_MAX_TIME_MS = MAX_TIME_MS

# ---------------------------------------------------------------- enum members as globals

cdef object BUY = Side.BUY
cdef object SELL = Side.SELL
cdef object LIMIT = OrderType.LIMIT
cdef object MARKET = OrderType.MARKET
cdef object GTC = TimeInForce.GTC
cdef object IOC = TimeInForce.IOC
cdef object FOK = TimeInForce.FOK
cdef object GTD = TimeInForce.GTD
cdef object STP_NEWEST = SelfTradePrevention.CANCEL_NEWEST
cdef object STP_OLDEST = SelfTradePrevention.CANCEL_OLDEST
cdef object STP_BOTH = SelfTradePrevention.CANCEL_BOTH
cdef object STP_DECREMENT = SelfTradePrevention.DECREMENT
cdef object S_OPEN = OrderStatus.OPEN
cdef object S_FILLED = OrderStatus.FILLED
cdef object S_CANCELED = OrderStatus.CANCELED
cdef object S_EXPIRED = OrderStatus.EXPIRED
cdef object M_PENDING = MarketStatus.PENDING
cdef object M_OPEN = MarketStatus.OPEN
cdef object M_HALTED = MarketStatus.HALTED
cdef object M_CLOSED = MarketStatus.CLOSED
cdef object M_RESOLVING = MarketStatus.RESOLVING
cdef object M_SETTLED = MarketStatus.SETTLED
cdef object R_USER = CancelReason.USER
cdef object R_IOC = CancelReason.IOC_REMAINDER
cdef object R_FOK = CancelReason.FOK_UNFILLED
cdef object R_SELF = CancelReason.SELF_TRADE
cdef object R_CLOSED = CancelReason.MARKET_CLOSED
cdef object R_REDUCE = CancelReason.REDUCE_ONLY
cdef object R_BALANCE = CancelReason.INSUFFICIENT_BALANCE
cdef object R_EXPIRED = CancelReason.EXPIRED
cdef object BINARY = MarketKind.BINARY

# Event payload strings, the reference's values (``side.value``, ``status.value``...).
cdef str V_BUY = "buy"
cdef str V_SELL = "sell"
cdef str K_RESERVE = "reserve"
cdef str K_RELEASE = "release"
cdef str K_LOCK = "collateral_lock"
cdef str K_UNLOCK = "collateral_release"
cdef str K_PNL = "realized_pnl"
cdef str K_FEE = "fee"
cdef str K_REBATE = "rebate"
cdef str EMPTY = ""
cdef str EXTERNAL = "external"

cdef inline object _val(object member):
    """``member.value`` for the enum members events carry, without the enum machinery."""
    if member is LIMIT:
        return "limit"
    if member is MARKET:
        return "market"
    if member is GTC:
        return "GTC"
    if member is IOC:
        return "IOC"
    if member is STP_NEWEST:
        return "cancel_newest"
    if member is S_FILLED:
        return "filled"
    if member is S_CANCELED:
        return "canceled"
    if member is R_IOC:
        return "ioc_remainder"
    if member is R_USER:
        return "user"
    if member is R_SELF:
        return "self_trade"
    return member.value


# ---------------------------------------------------------------- fast dataclass instances
#
# Events are the reference's slotted dataclasses. Their generated ``__init__`` is Python code
# that costs more than the rest of an event's work, so instances are allocated with the type's
# own allocator and every slot is written at its member offset: the same object ``__init__``
# would make (checked at import against the field list).

cdef Py_ssize_t _offset(type cls, str name) except -1:
    for base in cls.__mro__:
        descr = base.__dict__.get(name)
        if descr is not None:
            if type(descr).__name__ != "member_descriptor":
                raise ImportError(f"{cls.__name__}.{name} is not a slot")
            return (<PyMemberDescrObject *>descr).d_member.offset
    raise ImportError(f"{cls.__name__} has no slot {name}")


cdef class _Layout:
    cdef PyTypeObject *tp
    cdef Py_ssize_t off[16]
    cdef int n
    cdef unsigned int int_mask  # slots an event record holds as C integers, boxed when built
    cdef readonly tuple names

    def __init__(self, type cls, tuple expected, tuple ints=()):
        names = tuple(f.name for f in dataclasses.fields(cls))
        if names != expected:
            raise ImportError(f"{cls.__name__} fields changed: {names}")
        if "__dict__" in dir(cls) or not hasattr(cls, "__slots__"):
            raise ImportError(f"{cls.__name__} is not a slotted dataclass")
        self.tp = <PyTypeObject *>cls
        self.names = names
        self.n = len(names)
        for i, name in enumerate(names):
            self.off[i] = _offset(cls, name)
            if name in ints:
                self.int_mask |= 1u << i


cdef inline void _put(object o, Py_ssize_t off, object v) noexcept:
    Py_INCREF(v)
    (<PyObject **>((<char *><PyObject *>o) + off))[0] = <PyObject *>v


cdef inline object _get(object o, Py_ssize_t off, str name):
    cdef PyObject *v = (<PyObject **>((<char *><PyObject *>o) + off))[0]
    if v is NULL:
        return getattr(o, name)  # raises AttributeError as the reference would
    return <object>v


cdef _Layout L_ACCOUNT = _Layout(ev.AccountCreated, ("seq", "time", "account_id"), ("seq",))
cdef _Layout L_MARKET = _Layout(
    ev.MarketCreated,
    ("seq", "time", "market_id", "kind", "floor", "cap", "tick_value", "close_time"),
    ("seq",),
)
cdef _Layout L_STATUS = _Layout(
    ev.MarketStatusChanged, ("seq", "time", "market_id", "old_status", "new_status"), ("seq",)
)
cdef _Layout L_LEDGER = _Layout(
    ev.LedgerEntry, ("seq", "time", "debit", "credit", "amount", "kind", "ref"), ("seq", "amount")
)
cdef _Layout L_ACCEPTED = _Layout(
    ev.OrderAccepted,
    (
        "seq", "time", "order_id", "account_id", "market_id", "side", "order_type", "price",
        "size", "time_in_force", "expire_at", "post_only", "reduce_only", "client_order_id",
        "stp", "order_group_id",
    ),
    ("seq", "size"),
)
cdef _Layout L_AMENDED = _Layout(
    ev.OrderAmended,
    ("seq", "time", "order_id", "account_id", "market_id", "price", "size", "remaining", "requeued"),
    ("seq", "size", "remaining"),
)
cdef _Layout L_CLOSED = _Layout(
    ev.OrderClosed,
    ("seq", "time", "order_id", "account_id", "market_id", "status", "reason", "filled", "remaining"),
    ("seq", "filled", "remaining"),
)
cdef _Layout L_TRADE = _Layout(
    ev.Trade,
    (
        "seq", "time", "trade_id", "market_id", "price", "size", "taker_side", "maker_order_id",
        "taker_order_id", "maker_account_id", "taker_account_id", "maker_fee", "taker_fee",
    ),
    ("seq", "trade_id", "size", "maker_fee", "taker_fee"),
)
cdef _Layout L_POSITION = _Layout(
    ev.PositionChanged,
    ("seq", "time", "account_id", "market_id", "size", "collateral", "realized_pnl"),
    ("seq", "size", "collateral", "realized_pnl"),
)
cdef _Layout L_LEVEL = _Layout(
    ev.BookLevelChanged, ("seq", "time", "market_id", "side", "price", "size"), ("seq", "size")
)

# Command layouts (read side): the slots of the frozen command dataclasses.
cdef _Layout C_PLACE = _Layout(
    cmd.PlaceOrder,
    (
        "time", "account_id", "market_id", "side", "size", "price", "order_type", "time_in_force",
        "expire_at", "post_only", "reduce_only", "client_order_id", "stp", "order_group_id",
    ),
)
# A cancel may name its reason (cancel-on-disconnect) where the reference's command has one.
cdef bint CANCEL_HAS_REASON = "reason" in {f.name for f in dataclasses.fields(cmd.CancelOrder)}
cdef _Layout C_CANCEL = _Layout(
    cmd.CancelOrder,
    ("time", "account_id", "order_id", "reason") if CANCEL_HAS_REASON
    else ("time", "account_id", "order_id"),
)
cdef object REQUESTED_CANCEL_REASONS = getattr(_types, "REQUESTED_CANCEL_REASONS", None)
cdef _Layout C_AMEND = _Layout(cmd.AmendOrder, ("time", "account_id", "order_id", "price", "size"))


cdef type T_PLACE = cmd.PlaceOrder
cdef type T_CANCEL = cmd.CancelOrder
cdef type T_AMEND = cmd.AmendOrder


cdef inline object _new(_Layout layout):
    """A bare instance of the event type, every slot to be written by the caller.

    Left untracked by the cycle collector, as CPython leaves tuples of atoms: an event holds only
    str, int, bool and None, so it can be in no cycle, and a batch of events waiting for the
    journal costs the collector nothing."""
    e = _PyObject_GC_New(layout.tp)
    cdef Py_ssize_t i
    for i in range(layout.n):  # no slot may be read before it is written
        (<PyObject **>((<char *><PyObject *>e) + layout.off[i]))[0] = NULL
    return e


# ---------------------------------------------------------------- event records
#
# The rules write each event as a C record: its layout and one slot per field, a C integer
# where the layout says so (seq, sizes, amounts), else an owned reference (ids, strings, the
# command's time). ``execute`` builds the dataclasses from them at the end of the command;
# ``execute_batch`` keeps them until its caller asks (docs/adr/0008-compiled-engine.md).
# Building an event is most of what it costs: its allocation, the int objects of its fields,
# and later freeing both (docs/benchmarks.md).

cdef union _Slot:
    long long i
    PyObject *o

ctypedef struct _Rec:
    PyObject *layout  # a _Layout (module-level, never freed); NULL: a built event in f[0]
    _Slot f[16]


cdef class _Records:
    """A growable array of event records that owns the references in them."""

    cdef _Rec *recs
    cdef Py_ssize_t n
    cdef Py_ssize_t cap

    def __dealloc__(self):
        self.release(0)
        free(self.recs)

    cdef inline _Rec *push(self, _Layout layout) except NULL:
        cdef _Rec *r
        if self.n == self.cap:
            self.cap = 64 if self.cap == 0 else self.cap * 2
            r = <_Rec *>realloc(self.recs, self.cap * sizeof(_Rec))
            if r is NULL:
                raise MemoryError()
            self.recs = r
        r = &self.recs[self.n]
        self.n += 1
        r.layout = <PyObject *>layout
        return r

    cdef int reserve(self, Py_ssize_t cap) except -1:
        """Room for ``cap`` records, allocated once rather than grown by copying."""
        cdef _Rec *r
        if cap > self.cap:
            r = <_Rec *>realloc(self.recs, cap * sizeof(_Rec))
            if r is NULL:
                raise MemoryError()
            self.recs = r
            self.cap = cap
        return 0

    cdef int push_event(self, object event) except -1:
        """An event already built as a Python object (the rare settlement ones)."""
        cdef _Rec *r = self.push(L_ACCOUNT)
        r.layout = NULL
        Py_INCREF(event)
        r.f[0].o = <PyObject *>event
        return 0

    cdef void release(self, Py_ssize_t start) noexcept:
        """Drop the records from ``start`` on, unbuilt."""
        cdef Py_ssize_t j
        cdef int i
        cdef _Rec *r
        cdef _Layout layout
        for j in range(start, self.n):
            r = &self.recs[j]
            if r.layout is NULL:
                Py_XDECREF(r.f[0].o)
                continue
            layout = <_Layout>r.layout
            for i in range(layout.n):
                if not layout.int_mask & (1u << i):
                    Py_XDECREF(r.f[i].o)
        self.n = start

    cdef list build(self, Py_ssize_t start, Py_ssize_t stop):
        """The events of records ``start`` to ``stop``; their references pass to the events,
        so the caller must drop these records without releasing them."""
        cdef list out = []
        cdef Py_ssize_t j
        for j in range(start, stop):
            out.append(_build(&self.recs[j]))
        return out


cdef object _build(_Rec *r):
    cdef PyObject *o
    cdef _Layout layout
    cdef int i
    cdef PyObject **slot
    cdef bint failed = False
    if r.layout is NULL:
        e = <object>r.f[0].o
        Py_XDECREF(r.f[0].o)  # the record's reference; ``e`` holds its own
        return e
    layout = <_Layout>r.layout
    e = _PyObject_GC_New(layout.tp)
    for i in range(layout.n):
        slot = <PyObject **>((<char *><PyObject *>e) + layout.off[i])
        if layout.int_mask & (1u << i):
            o = _new_int(r.f[i].i)
            if o is NULL:
                failed = True
                o = <PyObject *>None
                Py_INCREF(None)
            slot[0] = o
        else:
            slot[0] = r.f[i].o
    if failed:
        raise MemoryError()
    return e


cdef inline void _own(_Rec *r, int i, object v) noexcept:
    Py_INCREF(v)
    r.f[i].o = <PyObject *>v


# ---------------------------------------------------------------- integers

cdef inline bint _is_int(object v) noexcept:
    """The reference's ``is_int``: exactly ``int`` (a bool is not a number of anything)."""
    return type(v) is int


cdef inline bint _fits(object v, long long *out) noexcept:
    """An exact int that fits in 64 bits, stored in ``out``."""
    cdef int overflow = 0
    if type(v) is not int:
        return False
    out[0] = PyLong_AsLongLongAndOverflow(v, &overflow)
    return overflow == 0


cdef object _py128(i128 x):
    cdef long long lo
    if -9223372036854775807 <= x <= 9223372036854775807:
        lo = <long long>x
        return lo
    cdef bint negative = x < 0
    cdef i128 a = -x if negative else x
    cdef unsigned long long high = <unsigned long long>(a >> 64)
    cdef unsigned long long low = <unsigned long long>a
    value = (int(high) << 64) | int(low)
    return -value if negative else value


cdef str _trade_ref(long long trade_id):
    """``f"trd:{trade_id}"`` (trade ids are positive)."""
    cdef char buf[32]
    cdef int n = 0, i
    cdef char digits[24]
    cdef unsigned long long v = <unsigned long long>trade_id
    while True:
        digits[n] = <char>(48 + v % 10)
        n += 1
        v //= 10
        if v == 0:
            break
    buf[0] = 116  # t
    buf[1] = 114  # r
    buf[2] = 100  # d
    buf[3] = 58  # :
    for i in range(n):
        buf[4 + i] = digits[n - 1 - i]
    out = PyUnicode_New(4 + n, 127)  # ASCII: written in place, no UTF-8 decoding
    memcpy(PyUnicode_DATA(out), buf, 4 + n)
    return out


cdef inline long long _ceil_div_bps(i128 numerator) noexcept:
    # numerator >= 0: Python's -(-n // BPS)
    return <long long>((numerator + BPS - 1) // BPS)


# ---------------------------------------------------------------- ledger

cdef class Cell:
    """One ledger account's balance. Present once money has moved through it, as the reference's
    dict holds a key once it was moved to or from."""

    cdef readonly str key
    cdef long long value
    cdef bint present

    def __cinit__(self, str key):
        self.key = key


cdef class Ledger:
    cdef dict cells

    def __cinit__(self):
        self.cells = {}

    cdef Cell cell(self, str key):
        cdef Cell c = self.cells.get(key)
        if c is None:
            c = Cell(key)
            self.cells[key] = c
        return c

    @property
    def balances(self):
        """The reference's ``{key: balance}`` for every key money has moved through (a copy)."""
        cdef Cell c
        cdef dict out = {}
        for c in self.cells.values():
            if c.present:
                out[c.key] = c.value
        return out

    def balance(self, key):
        cdef Cell c = self.cells.get(key)
        return c.value if c is not None else 0

    def total(self):
        cdef Cell c
        total = 0
        for c in self.cells.values():
            total += c.value
        return total


# ---------------------------------------------------------------- orders, positions, books

# Orders are outside the cycle collector. Every order the engine allocates is a GC object
# otherwise, and those allocations set off young collections that walk the live orders: ~10% of
# ``execute_batch``'s instructions (docs/benchmarks.md). Outside it, the collector cannot see
# an order's references, so anything an order refers to counts as referenced from outside and
# is never freed early: the only risk is a cycle through orders that nothing breaks, which
# leaks. Those cycles are the engine's own links (an order's neighbours in its level and its
# position's side, and its level, position, account and market), and the engine breaks them:
# an order that closes is unlinked from its level and position, and a closed order is referred
# to only by its ids (events, records, the expiry heap hold ids); when the engine goes,
# ``Engine.__dealloc__`` cuts every live order's links. An order's other fields are strings,
# ints, bools, None and enum members, which refer to nothing of the engine's.
@cython.no_gc
@cython.freelist(256)
cdef class Order:
    """A live order (the reference's ``order.Order``), with its place in a level's queue."""

    cdef readonly long long order_id
    cdef readonly str account_id
    cdef readonly str market_id
    cdef readonly object side
    cdef readonly bint is_buy
    cdef readonly object order_type
    cdef readonly long long price
    cdef readonly long long size
    cdef readonly long long remaining
    cdef readonly long long filled
    cdef readonly object time_in_force
    cdef bint has_expiry
    cdef long long expire
    cdef readonly object post_only
    cdef readonly object reduce_only
    cdef bint c_reduce_only
    cdef readonly object client_order_id
    cdef readonly object order_group_id
    cdef readonly object stp
    cdef readonly object status
    cdef readonly long long created_at
    cdef readonly long long unit_lock
    cdef readonly long long unit_fee
    cdef object id_obj
    cdef Order prv  # its level's queue
    cdef Order nxt
    cdef Order pprv  # its position's side, in the order orders joined it
    cdef Order pnxt
    cdef PriceLevel level
    cdef Position pos
    cdef Account acct
    cdef Market mkt

    __slots__ = (
        "account_id", "client_order_id", "created_at", "expire_at", "filled", "is_buy",
        "market_id", "order_group_id", "order_id", "order_type", "post_only", "price",
        "reduce_only", "remaining", "side", "size", "status", "stp", "time_in_force", "unit_fee",
        "unit_lock",
    )

    @property
    def expire_at(self):
        return self.expire if self.has_expiry else None

    def __repr__(self):
        return (
            f"Order({self.order_id} {self.account_id} {self.side} {self.remaining}/{self.size}"
            f" @{self.price} {self.status})"
        )


cdef void _cut(Order o) noexcept:
    """Drop an order's references to the engine's objects (its links): see Order."""
    o.prv = o.nxt = o.pprv = o.pnxt = None
    o.level = None
    o.pos = None
    o.acct = None
    o.mkt = None


cdef class _Levels:
    """One side of an account's open orders in one market: order count per price, sorted."""

    cdef long long *prices
    cdef long long *counts
    cdef Py_ssize_t n
    cdef Py_ssize_t cap

    def __dealloc__(self):
        free(self.prices)
        free(self.counts)

    cdef Py_ssize_t find(self, long long price) noexcept:
        cdef Py_ssize_t lo = 0, hi = self.n, mid
        while lo < hi:
            mid = (lo + hi) >> 1
            if self.prices[mid] < price:
                lo = mid + 1
            else:
                hi = mid
        return lo

    cdef int add(self, long long price) except -1:
        cdef Py_ssize_t i = self.find(price)
        if i < self.n and self.prices[i] == price:
            self.counts[i] += 1
            return 0
        if self.n == self.cap:
            self.cap = 8 if self.cap == 0 else self.cap * 2
            self.prices = <long long *>realloc(self.prices, self.cap * sizeof(long long))
            self.counts = <long long *>realloc(self.counts, self.cap * sizeof(long long))
            if self.prices is NULL or self.counts is NULL:
                raise MemoryError()
        memmove(&self.prices[i + 1], &self.prices[i], (self.n - i) * sizeof(long long))
        memmove(&self.counts[i + 1], &self.counts[i], (self.n - i) * sizeof(long long))
        self.prices[i] = price
        self.counts[i] = 1
        self.n += 1
        return 0

    cdef void remove(self, long long price) noexcept:
        cdef Py_ssize_t i = self.find(price)
        self.counts[i] -= 1
        if self.counts[i] == 0:
            memmove(&self.prices[i], &self.prices[i + 1], (self.n - i - 1) * sizeof(long long))
            memmove(&self.counts[i], &self.counts[i + 1], (self.n - i - 1) * sizeof(long long))
            self.n -= 1

    cdef dict view(self, Market market, bint is_buy):
        return {
            self.prices[i]: [self.counts[i], market.lock_per_contract_c(is_buy, self.prices[i])]
            for i in range(self.n)
        }

    cdef list sorted_prices(self):
        return [self.prices[i] for i in range(self.n)]


cdef dict _chain(Order head):
    """``{order_id: order}`` along a position's side, in the order the orders joined it."""
    cdef dict out = {}
    while head is not None:
        out[head.id_obj] = head
        head = head.pnxt
    return out


cdef class Position:
    """An account's stake in one market (the reference's ``position.Position``); each side's
    open orders are an intrusive list (``buys``/``sells`` build the reference's dicts)."""

    cdef readonly str account_id
    cdef readonly str market_id
    cdef readonly str collateral_key
    cdef readonly long long size
    cdef readonly long long collateral
    cdef readonly long long realized_pnl
    cdef Order buys_head
    cdef Order buys_tail
    cdef Order sells_head
    cdef Order sells_tail
    cdef readonly long long held_buy
    cdef readonly long long held_sell
    cdef readonly long long rem_buy
    cdef readonly long long rem_sell
    cdef i128 c_fee_buy
    cdef i128 c_fee_sell
    cdef i128 c_full_buy
    cdef i128 c_full_sell
    cdef _Levels levels_buy
    cdef _Levels levels_sell
    cdef Market mkt
    cdef Cell cell  # collateral:{account}:{market}, created when the position is registered

    __slots__ = (
        "account_id", "buy_levels", "buy_prices", "buys", "collateral", "collateral_key",
        "fee_buy", "fee_sell", "full_buy", "full_sell", "held_buy", "held_sell", "market_id",
        "realized_pnl", "rem_buy", "rem_sell", "sell_levels", "sell_prices", "sells", "size",
    )

    def __cinit__(self, str account_id, Market market):
        self.account_id = account_id
        self.market_id = market.market_id
        self.collateral_key = f"collateral:{account_id}:{market.market_id}"
        self.mkt = market
        self.levels_buy = _Levels()
        self.levels_sell = _Levels()

    @property
    def buys(self):
        return _chain(self.buys_head)

    @property
    def sells(self):
        return _chain(self.sells_head)

    cdef list order_ids(self):
        cdef list out = []
        cdef Order o = self.buys_head
        while o is not None:
            out.append(o.id_obj)
            o = o.pnxt
        o = self.sells_head
        while o is not None:
            out.append(o.id_obj)
            o = o.pnxt
        return out

    @property
    def fee_buy(self):
        return _py128(self.c_fee_buy)

    @property
    def fee_sell(self):
        return _py128(self.c_fee_sell)

    @property
    def full_buy(self):
        return _py128(self.c_full_buy)

    @property
    def full_sell(self):
        return _py128(self.c_full_sell)

    @property
    def buy_levels(self):
        return self.levels_buy.view(self.mkt, True)

    @property
    def sell_levels(self):
        return self.levels_sell.view(self.mkt, False)

    @property
    def buy_prices(self):
        return self.levels_buy.sorted_prices()

    @property
    def sell_prices(self):
        return self.levels_sell.sorted_prices()

    cdef int add_order(self, Order order) except -1:
        cdef long long r = order.remaining
        if order.is_buy:
            self.levels_buy.add(order.price)
            order.pprv = self.buys_tail
            order.pnxt = None
            if self.buys_tail is None:
                self.buys_head = order
            else:
                self.buys_tail.pnxt = order
            self.buys_tail = order
            self.rem_buy += r
            self.c_fee_buy += <i128>r * order.unit_fee
            self.c_full_buy += <i128>r * (order.unit_fee + order.unit_lock)
        else:
            self.levels_sell.add(order.price)
            order.pprv = self.sells_tail
            order.pnxt = None
            if self.sells_tail is None:
                self.sells_head = order
            else:
                self.sells_tail.pnxt = order
            self.sells_tail = order
            self.rem_sell += r
            self.c_fee_sell += <i128>r * order.unit_fee
            self.c_full_sell += <i128>r * (order.unit_fee + order.unit_lock)
        return 0

    cdef int remove_order(self, Order order) except -1:
        if order.is_buy:
            if order.pprv is None:
                self.buys_head = order.pnxt
            else:
                order.pprv.pnxt = order.pnxt
            if order.pnxt is None:
                self.buys_tail = order.pprv
            else:
                order.pnxt.pprv = order.pprv
            self.levels_buy.remove(order.price)
        else:
            if order.pprv is None:
                self.sells_head = order.pnxt
            else:
                order.pprv.pnxt = order.pnxt
            if order.pnxt is None:
                self.sells_tail = order.pprv
            else:
                order.pnxt.pprv = order.pprv
            self.levels_sell.remove(order.price)
        order.pprv = None
        order.pnxt = None
        self.shrink_order(order, order.remaining)
        return 0

    cdef inline void shrink_order(self, Order order, long long quantity) noexcept:
        if order.is_buy:
            self.rem_buy -= quantity
            self.c_fee_buy -= <i128>quantity * order.unit_fee
            self.c_full_buy -= <i128>quantity * (order.unit_fee + order.unit_lock)
        else:
            self.rem_sell -= quantity
            self.c_fee_sell -= <i128>quantity * order.unit_fee
            self.c_full_sell -= <i128>quantity * (order.unit_fee + order.unit_lock)

    cdef i128 need_c(self, bint is_buy) noexcept:
        cdef long long cover
        cdef long long size = self.size
        cdef long long edge_lock
        if is_buy:
            cover = -size if size < 0 else 0
            if cover == 0:
                return self.c_full_buy
            if cover >= self.rem_buy:
                return self.c_fee_buy
            # All buys share the floor, so the lowest price has the smallest lock.
            edge_lock = self.mkt.lock_per_contract_c(True, self.levels_buy.prices[0])
            return self.c_full_buy - <i128>cover * edge_lock
        cover = size if size > 0 else 0
        if cover == 0:
            return self.c_full_sell
        if cover >= self.rem_sell:
            return self.c_fee_sell
        edge_lock = self.mkt.lock_per_contract_c(False, self.levels_sell.prices[self.levels_sell.n - 1])
        return self.c_full_sell - <i128>cover * edge_lock

    cdef i128 need_with(self, bint is_buy, long long r, long long unit_fee, long long unit_lock) noexcept:
        """``need`` as if an order of ``r`` contracts at those unit figures were on the side too
        (the reference adds the order, asks ``need`` and removes it again)."""
        cdef long long cover
        cdef long long size = self.size
        cdef long long edge_lock
        cdef long long rem
        cdef i128 fee, full
        if is_buy:
            cover = -size if size < 0 else 0
            rem = self.rem_buy + r
            fee = self.c_fee_buy + <i128>r * unit_fee
            full = self.c_full_buy + <i128>r * (unit_fee + unit_lock)
            if cover == 0:
                return full
            if cover >= rem:
                return fee
            edge_lock = unit_lock
            if self.levels_buy.n:
                edge_lock = min(
                    edge_lock, self.mkt.lock_per_contract_c(True, self.levels_buy.prices[0])
                )
            return full - <i128>cover * edge_lock
        cover = size if size > 0 else 0
        rem = self.rem_sell + r
        fee = self.c_fee_sell + <i128>r * unit_fee
        full = self.c_full_sell + <i128>r * (unit_fee + unit_lock)
        if cover == 0:
            return full
        if cover >= rem:
            return fee
        edge_lock = unit_lock
        if self.levels_sell.n:
            edge_lock = min(
                edge_lock,
                self.mkt.lock_per_contract_c(False, self.levels_sell.prices[self.levels_sell.n - 1]),
            )
        return full - <i128>cover * edge_lock

    def need(self, bint is_buy):
        """What this side's open orders must have reserved, after the position's coverage."""
        return _py128(self.need_c(is_buy))

    def unrealized_pnl(self, mark, floor, cap, tick_value):
        if self.size > 0:
            return (mark - floor) * tick_value * self.size - self.collateral
        if self.size < 0:
            return (cap - mark) * tick_value * -self.size - self.collateral
        return 0

    def average_price_micro(self, floor, cap, tick_value):
        if self.size > 0:
            return floor * tick_value + self.collateral // self.size
        if self.size < 0:
            return cap * tick_value - self.collateral // -self.size
        return None


cdef class PriceLevel:
    """Orders at one price in time order: an intrusive queue (``orders`` is a dict view)."""

    cdef readonly long long price
    cdef readonly long long total
    cdef Order head
    cdef Order tail
    cdef Py_ssize_t count

    __slots__ = ("orders", "price", "total")

    def __cinit__(self, long long price):
        self.price = price

    @property
    def orders(self):
        out = {}
        cdef Order o = self.head
        while o is not None:
            out[o.id_obj] = o
            o = o.nxt
        return out

    cdef inline void push(self, Order order) noexcept:
        order.level = self
        order.nxt = None
        order.prv = self.tail
        if self.tail is None:
            self.head = order
        else:
            self.tail.nxt = order
        self.tail = order
        self.count += 1

    cdef inline void unlink(self, Order order) noexcept:
        if order.prv is None:
            self.head = order.nxt
        else:
            order.prv.nxt = order.nxt
        if order.nxt is None:
            self.tail = order.prv
        else:
            order.nxt.prv = order.prv
        order.prv = None
        order.nxt = None
        order.level = None
        self.count -= 1


cdef class _BookSide:
    """Levels sorted by key (the price for bids, minus the price for asks): the best is last."""

    cdef long long *keys
    cdef list levels
    cdef Py_ssize_t n
    cdef Py_ssize_t cap
    cdef long long sign

    def __cinit__(self, long long sign):
        self.levels = []
        self.sign = sign

    def __dealloc__(self):
        free(self.keys)

    cdef Py_ssize_t find(self, long long key) noexcept:
        cdef Py_ssize_t lo = 0, hi = self.n, mid
        # Most activity is near the touch, at the end.
        if self.n and self.keys[self.n - 1] == key:
            return self.n - 1
        while lo < hi:
            mid = (lo + hi) >> 1
            if self.keys[mid] < key:
                lo = mid + 1
            else:
                hi = mid
        return lo

    cdef PriceLevel get(self, long long price):
        cdef long long key = price * self.sign
        cdef Py_ssize_t i = self.find(key)
        if i < self.n and self.keys[i] == key:
            return <PriceLevel>self.levels[i]
        return None

    cdef PriceLevel get_or_add(self, long long price):
        cdef long long key = price * self.sign
        cdef Py_ssize_t i = self.find(key)
        if i < self.n and self.keys[i] == key:
            return <PriceLevel>self.levels[i]
        if self.n == self.cap:
            self.cap = 16 if self.cap == 0 else self.cap * 2
            self.keys = <long long *>realloc(self.keys, self.cap * sizeof(long long))
            if self.keys is NULL:
                raise MemoryError()
        memmove(&self.keys[i + 1], &self.keys[i], (self.n - i) * sizeof(long long))
        self.keys[i] = key
        self.n += 1
        level = PriceLevel(price)
        self.levels.insert(i, level)
        return level

    cdef void drop(self, PriceLevel level):
        cdef long long key = level.price * self.sign
        cdef Py_ssize_t i
        if self.keys[self.n - 1] == key:
            i = self.n - 1
            self.levels.pop()
        else:
            i = self.find(key)
            del self.levels[i]
        memmove(&self.keys[i], &self.keys[i + 1], (self.n - i - 1) * sizeof(long long))
        self.n -= 1

    cdef inline PriceLevel best(self) noexcept:
        if self.n == 0:
            return None
        return <PriceLevel>self.levels[self.n - 1]


cdef class Book:
    """One market's order book (the reference's ``book.Book``)."""

    cdef _BookSide bid_side
    cdef _BookSide ask_side
    # Levels changed since the engine last flushed them, in order: (is_buy, price), and the
    # level itself (borrowed; NULL once dropped: every drop is followed by its touch), so the
    # flush reads its size without searching the side for it.
    cdef bint *t_buy
    cdef long long *t_price
    cdef PyObject **t_level
    cdef Py_ssize_t t_n
    cdef Py_ssize_t t_cap

    __slots__ = ("_ask_keys", "_bid_keys", "asks", "bids", "touched")

    def __cinit__(self):
        self.bid_side = _BookSide(1)
        self.ask_side = _BookSide(-1)

    def __dealloc__(self):
        free(self.t_buy)
        free(self.t_price)
        free(self.t_level)

    cdef int touch(self, bint is_buy, long long price, PriceLevel level) except -1:
        """Note a level changed; ``level`` is None when it was just dropped."""
        cdef Py_ssize_t i
        cdef PyObject *ptr = NULL if level is None else <PyObject *>level
        for i in range(self.t_n):
            if self.t_price[i] == price and self.t_buy[i] == is_buy:
                self.t_level[i] = ptr
                return 0
        if self.t_n == self.t_cap:
            self.t_cap = 8 if self.t_cap == 0 else self.t_cap * 2
            self.t_buy = <bint *>realloc(self.t_buy, self.t_cap * sizeof(bint))
            self.t_price = <long long *>realloc(self.t_price, self.t_cap * sizeof(long long))
            self.t_level = <PyObject **>realloc(self.t_level, self.t_cap * sizeof(PyObject *))
            if self.t_buy is NULL or self.t_price is NULL or self.t_level is NULL:
                raise MemoryError()
        self.t_buy[self.t_n] = is_buy
        self.t_price[self.t_n] = price
        self.t_level[self.t_n] = ptr
        self.t_n += 1
        return 0

    cdef inline long long touched_size(self, Py_ssize_t i) noexcept:
        """The size now of the ``i``th level touched (0: dropped)."""
        if self.t_level[i] is NULL:
            return 0
        return (<PriceLevel>self.t_level[i]).total

    @property
    def touched(self):
        return {(bool(self.t_buy[i]), self.t_price[i]): None for i in range(self.t_n)}

    @property
    def bids(self):
        return {(<PriceLevel>lv).price: lv for lv in self.bid_side.levels}

    @property
    def asks(self):
        return {(<PriceLevel>lv).price: lv for lv in self.ask_side.levels}

    def best_bid(self):
        level = self.bid_side.best()
        return None if level is None else level.price

    def best_ask(self):
        level = self.ask_side.best()
        return None if level is None else level.price

    cdef int add(self, Order order) except -1:
        cdef _BookSide side = self.bid_side if order.is_buy else self.ask_side
        cdef PriceLevel level = side.get_or_add(order.price)
        level.push(order)
        level.total += order.remaining
        self.touch(order.is_buy, order.price, level)
        return 0

    cdef int remove(self, Order order) except -1:
        """Take a resting order out of the book (its ``remaining`` is left as it is)."""
        cdef PriceLevel level = order.level
        level.unlink(order)
        level.total -= order.remaining
        if level.count == 0:
            (self.bid_side if order.is_buy else self.ask_side).drop(level)
            level = None
        self.touch(order.is_buy, order.price, level)
        return 0

    cdef int reduce(self, Order order, long long quantity) except -1:
        """Lower a resting order's remaining size in place, keeping its priority."""
        order.remaining -= quantity
        order.level.total -= quantity
        self.touch(order.is_buy, order.price, order.level)
        return 0

    cpdef long long level_size(self, bint is_buy, long long price) noexcept:
        cdef PriceLevel level = (self.bid_side if is_buy else self.ask_side).get(price)
        return level.total if level is not None else 0

    def queue_ahead(self, bint is_buy, long long price, long long order_id):
        """(contracts, orders) resting before ``order_id`` at its level, by time priority;
        None when it does not rest there."""
        cdef PriceLevel level = (self.bid_side if is_buy else self.ask_side).get(price)
        cdef long long contracts = 0
        cdef Py_ssize_t count = 0
        cdef Order o = None if level is None else level.head
        while o is not None:
            if o.order_id == order_id:
                return contracts, count
            contracts += o.remaining
            count += 1
            o = o.nxt
        return None

    def bid_keys_best_last(self):
        return [self.bid_side.keys[i] for i in range(self.bid_side.n)]

    def ask_keys_best_last(self):
        return [self.ask_side.keys[i] for i in range(self.ask_side.n)]

    @property
    def _bid_keys(self):
        return self.bid_keys_best_last()

    @property
    def _ask_keys(self):
        return self.ask_keys_best_last()

    def best_opposite(self, bint taker_is_buy):
        return self.ask_side.best() if taker_is_buy else self.bid_side.best()

    def depth(self, bint is_buy, Py_ssize_t levels):
        """Aggregated (price, size) for up to ``levels`` prices, best first."""
        cdef _BookSide side = self.bid_side if is_buy else self.ask_side
        cdef Py_ssize_t i, start
        cdef PriceLevel level
        out = []
        # The reference reads keys[-levels:], best last, reversed.
        if levels > 0:
            start = max(side.n - levels, 0)
        elif levels == 0:
            start = 0
        else:
            start = min(-levels, side.n)
        for i in range(side.n - 1, start - 1, -1):
            level = <PriceLevel>side.levels[i]
            out.append((level.price, level.total))
        return out

    def orders(self):
        """Every resting order: bids best first, then asks best first, each level in time order."""
        return iter(self._orders())

    cdef list _orders(self):
        cdef list out = []
        cdef Py_ssize_t i
        cdef Order o
        for side in (self.bid_side, self.ask_side):
            for i in range((<_BookSide>side).n - 1, -1, -1):
                o = (<PriceLevel>(<_BookSide>side).levels[i]).head
                while o is not None:
                    out.append(o)
                    o = o.nxt
        return out

    def is_crossed(self):
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid >= ask


cdef class Market:
    """A market's rules, lifecycle state, book and proposed settlement (``market.Market``)."""

    cdef readonly str market_id
    cdef readonly object kind
    cdef readonly long long tick_value
    cdef readonly long long floor
    cdef readonly long long cap
    cdef readonly long long close_time
    cdef readonly long long min_size
    cdef readonly long long max_order_size
    cdef readonly long long max_position
    cdef readonly long long maker_fee_bps
    cdef readonly long long taker_fee_bps
    cdef readonly long long fee_reserve_bps
    cdef readonly object status
    cdef readonly Book book
    cdef readonly object settlement
    cdef readonly long long open_interest
    cdef bint has_last_price
    cdef long long c_last_price
    cdef readonly dict positions
    cdef Cell clearing
    cdef Cell fees
    cdef object id_obj
    cdef list price_objs  # the int objects of every price on a grid of up to 100,001 ticks

    __slots__ = (
        "book", "cap", "close_time", "fee_reserve_bps", "floor", "kind", "last_price",
        "maker_fee_bps", "market_id", "max_order_size", "max_position", "min_size",
        "open_interest", "positions", "settlement", "status", "taker_fee_bps", "tick_value",
    )

    @property
    def last_price(self):
        return self.c_last_price if self.has_last_price else None

    def check_transition(self, new_status):
        if new_status not in MARKET_TRANSITIONS[self.status]:
            raise DomainError(
                ErrorCode.INVALID_TRANSITION,
                f"market {self.market_id} cannot go from {self.status} to {new_status}",
                {"market_id": self.market_id, "status": str(self.status), "to": str(new_status)},
            )

    cdef inline object price_obj(self, long long price):
        """``price`` as an int object, shared (events carry prices; most are above 256)."""
        if self.price_objs is not None:
            return <object>PyList_GET_ITEM(self.price_objs, price - self.floor)
        return price

    cdef inline long long lock_per_contract_c(self, bint is_buy, long long price) noexcept:
        return ((price - self.floor) if is_buy else (self.cap - price)) * self.tick_value

    def lock_per_contract(self, bint is_buy, long long price):
        return self.lock_per_contract_c(is_buy, price)

    cdef inline long long fee_c(self, long long price, long long size, long long bps) noexcept:
        cdef i128 notional = <i128>price * self.tick_value * size
        if bps >= 0:
            return _ceil_div_bps(notional * bps)
        return -<long long>((notional * -bps) // BPS)

    def fee(self, long long price, long long size, long long bps):
        return self.fee_c(price, size, bps)

    cdef inline long long fee_reserve_c(self, long long price) noexcept:
        return _ceil_div_bps(<i128>price * self.tick_value * self.fee_reserve_bps)

    def fee_reserve_per_contract(self, long long price):
        return self.fee_reserve_c(price)


cdef class Account:
    cdef readonly str account_id
    cdef readonly str cash_key
    cdef readonly str orders_key
    cdef readonly dict positions
    cdef readonly dict client_order_ids
    cdef Cell cash
    cdef Cell orders
    cdef Position last_position  # the one an order last found here: most orders reuse it

    __slots__ = ("account_id", "cash_key", "client_order_ids", "orders_key", "positions")


cdef class EventBatch:
    """``execute_batch``'s answer: per command, its events or the ``DomainError`` that rejected
    it (as ``execute_many``), held as records until ``results()`` builds them, once."""

    cdef _Records recs
    cdef Py_ssize_t *ends  # each command's records end here
    cdef readonly Py_ssize_t count
    cdef Py_ssize_t cap
    cdef dict errors  # command index -> DomainError
    cdef list built

    def __dealloc__(self):
        free(self.ends)

    cdef int push_end(self, Py_ssize_t end) except -1:
        cdef Py_ssize_t *grown
        if self.count == self.cap:
            self.cap = 32 if self.cap == 0 else self.cap * 2
            grown = <Py_ssize_t *>realloc(self.ends, self.cap * sizeof(Py_ssize_t))
            if grown is NULL:
                raise MemoryError()
            self.ends = grown
        self.ends[self.count] = end
        self.count += 1
        return 0

    def __len__(self):
        return self.count

    @property
    def event_count(self):
        """How many events the batch's accepted commands emitted."""
        return self.ends[self.count - 1] if self.count else 0

    def results(self):
        """One entry per command: its list of events, or its ``DomainError``."""
        cdef Py_ssize_t i, start = 0
        cdef list out
        if self.built is None:
            out = []
            for i in range(self.count):
                if self.errors and i in self.errors:
                    out.append(self.errors[i])
                else:
                    out.append(self.recs.build(start, self.ends[i]))
                start = self.ends[i]
            self.recs.n = 0  # the references now belong to the events
            self.built = out
        return self.built



# ---------------------------------------------------------------- the live orders by id

cdef class OrderIndex:
    """The live orders by order id (``engine.orders``): a hash table in C with linear probing,
    read from Python as the reference's ``{order_id: order}`` dict (a ``Mapping``, iterated in
    id order). Every command looks an order up, adds or drops one; in a Python dict that was
    ~10% of ``execute_batch``, most of it comparing int objects and resizing a table that
    deletions fill with dummies (docs/benchmarks.md)."""

    cdef long long *ids  # 0: empty (order ids start at 1)
    cdef PyObject **objs  # owned references to the orders
    cdef Py_ssize_t mask  # slots - 1; slots is a power of two
    cdef int shift  # 64 - log2(slots): Fibonacci hashing takes the high bits
    cdef Py_ssize_t used

    def __cinit__(self):
        self._alloc(1024)

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self.objs is not NULL:
            for i in range(self.mask + 1):
                if self.ids[i]:
                    Py_XDECREF(self.objs[i])
        free(self.ids)
        free(self.objs)

    cdef int _alloc(self, Py_ssize_t slots) except -1:
        self.ids = <long long *>calloc(slots, sizeof(long long))
        self.objs = <PyObject **>calloc(slots, sizeof(PyObject *))
        if self.ids is NULL or self.objs is NULL:
            free(self.ids)
            free(self.objs)
            self.ids = NULL
            self.objs = NULL
            raise MemoryError()
        self.mask = slots - 1
        self.shift = 64
        while slots > 1:
            slots >>= 1
            self.shift -= 1
        self.used = 0
        return 0

    cdef inline Py_ssize_t _home(self, long long key) noexcept:
        return <Py_ssize_t>((<unsigned long long>key * 11400714819323198485ULL) >> self.shift)

    cdef inline Py_ssize_t _slot(self, long long key) noexcept:
        """The slot holding ``key``, or -1."""
        cdef Py_ssize_t i = self._home(key)
        while self.ids[i]:
            if self.ids[i] == key:
                return i
            i = (i + 1) & self.mask
        return -1

    cdef inline Order find(self, long long key):
        cdef Py_ssize_t i
        if key <= 0:
            return None
        i = self._slot(key)
        if i < 0:
            return None
        return <Order>self.objs[i]

    cdef int put(self, long long key, Order order) except -1:
        """``index[key] = order`` (an order already under ``key`` is replaced, as in a dict)."""
        cdef long long *old_keys
        cdef PyObject **old_vals
        cdef Py_ssize_t i, old_slots
        if key <= 0:
            raise ValueError(f"order id {key} is not positive")
        if (self.used + 1) * 2 > self.mask + 1:  # at most half full: short probes
            old_keys, old_vals, old_slots = self.ids, self.objs, self.mask + 1
            self._alloc(old_slots * 2)
            for i in range(old_slots):
                if old_keys[i]:
                    self._insert(old_keys[i], old_vals[i])
            free(old_keys)
            free(old_vals)
        i = self._slot(key)
        Py_INCREF(order)
        if i >= 0:
            Py_XDECREF(self.objs[i])
            self.objs[i] = <PyObject *>order
        else:
            self._insert(key, <PyObject *>order)
        return 0

    cdef inline void _insert(self, long long key, PyObject *value) noexcept:
        cdef Py_ssize_t i = self._home(key)
        while self.ids[i]:
            i = (i + 1) & self.mask
        self.ids[i] = key
        self.objs[i] = value
        self.used += 1

    cdef void remove(self, long long key) noexcept:
        """Drop ``key`` (present); later entries of its run shift back so probes stay short."""
        cdef Py_ssize_t i = self._slot(key), j, home
        cdef PyObject *value
        if i < 0:
            return
        value = self.objs[i]
        j = i
        while True:
            j = (j + 1) & self.mask
            if not self.ids[j]:
                break
            home = self._home(self.ids[j])
            # Entry j may move back to i unless its home lies cyclically in (i, j].
            if (i < home <= j) if i <= j else (i < home or home <= j):
                continue
            self.ids[i] = self.ids[j]
            self.objs[i] = self.objs[j]
            i = j
        self.ids[i] = 0
        self.objs[i] = NULL
        self.used -= 1
        Py_XDECREF(value)

    cdef list sorted_orders(self):
        cdef list pairs = []
        cdef Py_ssize_t i
        for i in range(self.mask + 1):
            if self.ids[i]:
                pairs.append((self.ids[i], <object>self.objs[i]))
        pairs.sort(key=_first)
        return [pair[1] for pair in pairs]

    # The dict's reading side, for Python callers (service reads, tests, invariants).

    cdef object _lookup(self, object key, object default):
        cdef long long k
        cdef Order found
        if _fits(key, &k) or (isinstance(key, int) and _fits(int(key), &k)):
            found = self.find(k)
            return default if found is None else found
        if isinstance(key, (float, complex)) or hasattr(key, "__index__"):
            return self.as_dict().get(key, default)  # 1.0 == 1, as a dict compares keys
        return default

    cdef dict as_dict(self):
        cdef dict out = {}
        cdef Order o
        for o in self.sorted_orders():
            out[o.id_obj] = o
        return out

    def __len__(self):
        return self.used

    def __getitem__(self, key):
        found = self._lookup(key, None)
        if found is None:
            raise KeyError(key)
        return found

    def get(self, key, default=None):
        return self._lookup(key, default)

    def __contains__(self, key):
        return self._lookup(key, None) is not None

    def __iter__(self):
        return iter(self.as_dict())

    def keys(self):
        return self.as_dict().keys()

    def values(self):
        return self.sorted_orders()

    def items(self):
        return self.as_dict().items()

    def __eq__(self, other):
        if isinstance(other, OrderIndex):
            other = (<OrderIndex>other).as_dict()
        if isinstance(other, collections.abc.Mapping):
            return self.as_dict() == dict(other.items())
        return NotImplemented

    def __ne__(self, other):
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None

    def __repr__(self):
        return repr(self.as_dict())


cdef object _first(tuple pair):
    return pair[0]


collections.abc.Mapping.register(OrderIndex)


# ---------------------------------------------------------------- the engine

cdef inline long long _closable(Position position, bint is_buy) noexcept:
    cdef long long size = position.size
    if is_buy:
        return -size if size < 0 else 0
    return size if size > 0 else 0


cdef long long _check_amount(object amount) except -1:
    cdef long long a
    if not _fits(amount, &a) or not 0 < a <= MAX_AMOUNT:
        raise invalid("amount", f"must be a positive integer of micro-USDC up to {MAX_AMOUNT}")
    return a


# No tp_clear: if the collector ever frees an engine (one held by a garbage cycle), its fields
# must still be there for ``__dealloc__`` to cut its orders' links. An engine refers only to
# its own objects and to the commands' values, so it is never in a cycle itself.
@cython.no_gc_clear
cdef class Engine:
    """The compiled engine: ``execute(command) -> list[Event]`` or ``DomainError``, as the
    reference ``ballast_exchange.domain.Engine``."""

    cdef readonly long long seq
    cdef readonly long long next_order_id
    cdef readonly long long next_trade_id
    cdef readonly Ledger ledger
    cdef readonly dict accounts
    cdef readonly dict markets
    cdef readonly OrderIndex orders
    cdef list _gtd
    cdef _Records _recs  # this command's events, as records
    cdef Py_ssize_t _batch_records  # the most records a batch has needed: the next one's room
    cdef Cell external
    cdef dict _handlers


    def __cinit__(self):
        self.next_order_id = 1
        self.next_trade_id = 1
        self.ledger = Ledger()
        self.accounts = {}
        self.markets = {}
        self.orders = OrderIndex()
        self._gtd = []
        self._recs = _Records()
        self.external = self.ledger.cell(EXTERNAL)
        self._handlers = {
            cmd.CreateAccount: 1,
            cmd.Deposit: 2,
            cmd.Withdraw: 3,
            cmd.CreateMarket: 4,
            cmd.ChangeMarketStatus: 5,
            cmd.PlaceOrder: 6,
            cmd.CancelOrder: 7,
            cmd.CancelAll: 8,
            cmd.AmendOrder: 9,
            cmd.ExpireOrders: 10,
            cmd.ProposeSettlement: 11,
            cmd.OverturnSettlement: 12,
            cmd.FinalizeSettlement: 13,
        }

    def __dealloc__(self):
        # Orders are outside the cycle collector (see Order): cut every live order's links so
        # that books, positions and orders go by reference counting, not leak. The live index
        # is outside the collector too (an OrderIndex: C arrays), so it is never emptied before
        # this runs; the books are walked too, for an order a failed restore left linked but
        # not indexed.
        cdef Order o, nxt
        cdef Market market
        cdef _BookSide side
        cdef PriceLevel level
        cdef Py_ssize_t i
        cdef OrderIndex index = self.orders
        if index is not None and index.ids is not NULL:
            for i in range(index.mask + 1):
                if index.ids[i]:
                    _cut(<Order>index.objs[i])
        if self.markets is not None:
            for market in self.markets.values():
                if market.book is None:
                    continue
                for side in (market.book.bid_side, market.book.ask_side):
                    if side is None or side.levels is None:
                        continue
                    for level in side.levels:
                        o = level.head
                        level.head = level.tail = None
                        while o is not None:
                            nxt = o.nxt
                            _cut(o)
                            o = nxt

    # ------------------------------------------------------------ entry points

    def execute(self, command):
        """Apply one command; return its events, or raise ``DomainError`` having changed nothing."""
        return self._execute(command)

    def execute_many(self, commands):
        """Apply commands in order; one entry per command: its events, or the ``DomainError``
        that rejected it (which changed nothing). For a sequencer's batch."""
        cdef list results = []
        for command in commands:
            try:
                results.append(self._execute(command))
            except DomainError as error:
                results.append(error)
        return results

    cdef list _execute(self, object command):
        cdef _Records recs = self._recs
        cdef Py_ssize_t start = recs.n
        try:
            self._run(command)
        except BaseException:
            recs.release(start)  # a rejected command emitted nothing, but never leave any
            raise
        out = recs.build(start, recs.n)
        recs.n = start
        return out

    def execute_batch(self, commands):
        """Apply commands in order, as ``execute_many``, keeping the events as compact records:
        an ``EventBatch`` builds the Python events only when its ``results()`` is asked for."""
        cdef EventBatch batch = EventBatch.__new__(EventBatch)
        cdef _Records saved = self._recs
        cdef _Records recs = _Records()
        cdef Py_ssize_t start
        batch.recs = recs
        batch.errors = {}
        recs.reserve(self._batch_records)
        self._recs = recs
        try:
            for command in commands:
                start = recs.n
                try:
                    self._run(command)
                except DomainError as error:
                    recs.release(start)
                    batch.errors[batch.count] = error
                batch.push_end(recs.n)
        finally:
            self._recs = saved
        if recs.n > self._batch_records:
            self._batch_records = recs.n
        return batch

    cdef int _run(self, object command) except -1:
        cdef object kind
        cdef object time_obj
        cdef type t = type(command)
        # The hot commands first, their time read at its slot; the rest through the table.
        if t is T_PLACE:
            kind = 6
            time_obj = _get(command, C_PLACE.off[0], "time")
        elif t is T_CANCEL:
            kind = 7
            time_obj = _get(command, C_CANCEL.off[0], "time")
        elif t is T_AMEND:
            kind = 9
            time_obj = _get(command, C_AMEND.off[0], "time")
        else:
            kind = self._handlers.get(t)
            if kind is None:
                raise invalid("command", f"unknown command {type(command).__name__}")
            time_obj = command.time
        cdef long long time
        if not _fits(time_obj, &time) or not 0 <= time <= C_MAX_TIME_MS:
            raise invalid("time", "must be milliseconds between 1970 and 9999")
        cdef int k = kind
        if k == 6:
            self._place_order(command, time_obj, time)
        elif k == 7:
            self._cancel_order(command, time_obj, time)
        elif k == 9:
            self._amend_order(command, time_obj, time)
        elif k == 8:
            self._cancel_all(command, time_obj, time)
        elif k == 10:
            self._expire_orders(command, time_obj, time)
        elif k == 1:
            self._create_account(command, time_obj)
        elif k == 2:
            self._deposit(command, time_obj)
        elif k == 3:
            self._withdraw(command, time_obj)
        elif k == 4:
            self._create_market(command, time_obj)
        elif k == 5:
            self._change_market_status(command, time_obj, time)
        elif k == 11:
            self._propose_settlement(command, time_obj)
        elif k == 12:
            self._overturn_settlement(command, time_obj)
        else:
            self._finalize_settlement(command, time_obj)
        return 0

    # ------------------------------------------------------------ reading state

    cpdef Account account(self, object account_id):
        cdef object account = (
            self.accounts.get(account_id) if isinstance(account_id, str) else None
        )
        if account is None:
            raise DomainError(
                ErrorCode.ACCOUNT_NOT_FOUND,
                f"account {account_id!r} does not exist",
                {"account_id": account_id},
            )
        return <Account>account

    cpdef Market market(self, object market_id):
        cdef object market = self.markets.get(market_id) if isinstance(market_id, str) else None
        if market is None:
            raise DomainError(
                ErrorCode.MARKET_NOT_FOUND,
                f"market {market_id!r} does not exist",
                {"market_id": market_id},
            )
        return <Market>market

    def next_expiry(self):
        """When the next GTD order falls due, if any (drops stale heap entries on the way)."""
        gtd = self._gtd
        while gtd:
            expire_at, order_id = gtd[0]
            order = self.orders.find(order_id)
            if order is not None and order.expire_at == expire_at:
                return expire_at
            heapq.heappop(gtd)
        return None

    def available(self, account_id):
        return self.account(account_id).cash.value

    def reserved(self, account_id):
        cdef Account account = self.account(account_id)
        cdef Position p
        total = account.orders.value
        for p in account.positions.values():
            total += p.cell.value if p.cell is not None else 0
        return total

    def total_balance(self, account_id):
        return self.available(account_id) + self.reserved(account_id)

    def position(self, account_id, market_id):
        return self.account(account_id).positions.get(market_id)

    # ------------------------------------------------------------ primitives (state.py)

    cdef inline int _emit(self, object event) except -1:
        """An event built as a Python object (settlement's rare ones)."""
        return self._recs.push_event(event)

    cdef int _move(self, Cell debit, Cell credit, long long amount, str kind, object ref,
                   object time) except -1:
        """One ledger move and its event; ``ref`` is stored as given (a command's may be any
        object, as in the reference)."""
        debit.value -= amount
        credit.value += amount
        debit.present = True
        credit.present = True
        self.seq += 1
        cdef _Rec *r = self._recs.push(L_LEDGER)
        r.f[0].i = self.seq
        _own(r, 1, time)
        _own(r, 2, debit.key)
        _own(r, 3, credit.key)
        r.f[4].i = amount
        _own(r, 5, kind)
        _own(r, 6, ref)
        return 0

    cdef int _set_status(self, Market market, object status, object time) except -1:
        old = market.status
        market.status = status
        self.seq += 1
        cdef _Rec *r = self._recs.push(L_STATUS)
        r.f[0].i = self.seq
        _own(r, 1, time)
        _own(r, 2, market.market_id)
        _own(r, 3, old.value)
        _own(r, 4, status.value)
        return 0

    cdef int _check_trading(self, Market market, long long time) except -1:
        if market.status is not M_OPEN or time >= market.close_time:
            status = market.status if time < market.close_time else M_CLOSED
            raise DomainError(
                ErrorCode.MARKET_CLOSED,
                f"market {market.market_id} is not open for trading ({status})",
                {"market_id": market.market_id, "status": str(status)},
            )
        return 0

    cdef int _reconcile(self, Account account, Position position, object time) except -1:
        """Bring the reservations held for the position's orders to what they need now."""
        cdef long long need = <long long>position.need_c(True)
        cdef long long delta = need - position.held_buy
        if delta:
            self._reserve(account, delta, time)
            position.held_buy = need
        need = <long long>position.need_c(False)
        delta = need - position.held_sell
        if delta:
            self._reserve(account, delta, time)
            position.held_sell = need
        return 0

    cdef inline int _reserve(self, Account account, long long delta, object time) except -1:
        if delta > 0:
            self._move(account.cash, account.orders, delta, K_RESERVE, EMPTY, time)
        else:
            self._move(account.orders, account.cash, -delta, K_RELEASE, EMPTY, time)
        return 0

    cdef int _cancel(self, Order order, object reason, object time) except -1:
        """Take a resting order off the book and close it (reservations settle on reconcile)."""
        order.mkt.book.remove(order)
        self._close_live(order, S_CANCELED, reason, time)
        self._reconcile(order.acct, order.pos, time)
        return 0

    cdef int _close_live(self, Order order, object status, object reason, object time) except -1:
        """Forget a live order that is off the book (or never rested) and report its end."""
        order.pos.remove_order(order)
        self.orders.remove(order.order_id)
        if order.client_order_id is not None:
            del order.acct.client_order_ids[order.client_order_id]
        self._close(order, status, reason, time)
        return 0

    cdef int _close(self, Order order, object status, object reason, object time) except -1:
        order.status = status
        self.seq += 1
        cdef _Rec *r = self._recs.push(L_CLOSED)
        r.f[0].i = self.seq
        _own(r, 1, time)
        _own(r, 2, order.id_obj)
        _own(r, 3, order.account_id)
        _own(r, 4, order.market_id)
        _own(r, 5, _val(status))
        _own(r, 6, _val(reason) if reason is not None else None)
        r.f[7].i = order.filled
        r.f[8].i = order.size - order.filled
        return 0

    cdef int _expire(self, Order order, object time) except -1:
        order.mkt.book.remove(order)
        self._close_live(order, S_EXPIRED, R_EXPIRED, time)
        self._reconcile(order.acct, order.pos, time)
        return 0

    cdef int _emit_amended(self, Order order, bint requeued, object time) except -1:
        self.seq += 1
        cdef _Rec *r = self._recs.push(L_AMENDED)
        r.f[0].i = self.seq
        _own(r, 1, time)
        _own(r, 2, order.id_obj)
        _own(r, 3, order.account_id)
        _own(r, 4, order.market_id)
        _own(r, 5, order.mkt.price_obj(order.price))
        r.f[6].i = order.size
        r.f[7].i = order.remaining
        _own(r, 8, True if requeued else False)
        return 0

    cdef int _flush_book(self, Market market, object time) except -1:
        cdef Book book = market.book
        cdef Py_ssize_t i
        cdef bint is_buy
        cdef long long price
        cdef _Rec *r
        for i in range(book.t_n):
            is_buy = book.t_buy[i]
            price = book.t_price[i]
            self.seq += 1
            r = self._recs.push(L_LEVEL)
            r.f[0].i = self.seq
            _own(r, 1, time)
            _own(r, 2, market.market_id)
            _own(r, 3, V_BUY if is_buy else V_SELL)
            _own(r, 4, market.price_obj(price))
            r.f[5].i = book.touched_size(i)
        book.t_n = 0
        return 0

    # ------------------------------------------------------------ matching (matching.py)

    cdef int _take(self, Market market, Account account, Position position, Order order,
                   object time_obj, long long time, object cut_reason) except -1:
        """Match an incoming (or re-priced) order, then rest or close what is left of it."""
        stop_reason = self._match(market, order, time_obj, time)
        if order.status is S_OPEN:
            if order.remaining == 0 and cut_reason is None:
                self._close_live(order, S_FILLED, None, time_obj)
            elif stop_reason is not None:
                self._close_live(order, S_CANCELED, stop_reason, time_obj)
            elif order.remaining and (order.time_in_force is GTC or order.time_in_force is GTD):
                market.book.add(order)
                if order.has_expiry:
                    heapq.heappush(self._gtd, (order.expire, order.id_obj))
            else:
                reason = cut_reason or R_IOC
                self._close_live(order, S_CANCELED, reason, time_obj)
        self._reconcile(account, position, time_obj)
        self._flush_book(market, time_obj)
        return 0

    cdef object _live_touch(self, Market market, bint is_buy, long long time):
        """Best price on one side, looking past GTD orders already due to expire."""
        cdef _BookSide side = market.book.bid_side if is_buy else market.book.ask_side
        cdef Py_ssize_t i
        cdef PriceLevel level
        cdef Order o
        for i in range(side.n - 1, -1, -1):
            level = <PriceLevel>side.levels[i]
            o = level.head
            while o is not None:
                if not o.has_expiry or o.expire > time:
                    return level.price
                o = o.nxt
        return None

    cdef int _reserve_check(self, Account account, Position position, Order order) except -1:
        """Raise INSUFFICIENT_BALANCE unless the account can reserve for ``order`` too."""
        cdef bint is_buy = order.is_buy
        cdef long long held = position.held_buy if is_buy else position.held_sell
        cdef i128 need = position.need_with(is_buy, order.remaining, order.unit_fee, order.unit_lock)
        cdef long long available = account.cash.value
        if need - held > available:
            raise DomainError(
                ErrorCode.INSUFFICIENT_BALANCE,
                "insufficient collateral for this order",
                {"required": _py128(need - held), "available": available},
            )
        return 0

    cdef void _market_order_reach(self, Market market, Order order, long long time,
                                  long long *fillable, long long *worst_out) noexcept:
        cdef bint is_buy = order.is_buy
        cdef long long limit = order.price
        cdef _BookSide side = market.book.ask_side if is_buy else market.book.bid_side
        cdef long long wanted = order.remaining
        cdef bint skip_own = order.stp is STP_OLDEST
        cdef long long reached = 0
        cdef long long worst = limit
        cdef long long price
        cdef Py_ssize_t i
        cdef PriceLevel level
        cdef Order o
        for i in range(side.n - 1, -1, -1):
            level = <PriceLevel>side.levels[i]
            price = level.price
            if (price > limit) if is_buy else (price < limit):
                break
            if skip_own:
                o = level.head
                while o is not None:
                    if o.acct is not order.acct and (not o.has_expiry or o.expire > time):
                        reached += o.remaining
                    o = o.nxt
            else:
                reached += level.total
            worst = price
            if reached >= wanted:
                fillable[0] = wanted
                worst_out[0] = worst
                return
        fillable[0] = reached
        worst_out[0] = worst

    cdef long long _affordable(self, Account account, Position position, Order order,
                               long long quantity) noexcept:
        """The largest size up to ``quantity`` the account can reserve ``order`` for."""
        if quantity == 0:
            return 0
        cdef bint is_buy = order.is_buy
        cdef long long held = position.held_buy if is_buy else position.held_sell
        cdef i128 budget = <i128>account.cash.value + held
        if position.need_with(is_buy, quantity, order.unit_fee, order.unit_lock) <= budget:
            return quantity
        cdef long long low = 0, high = quantity, mid
        while high - low > 1:
            mid = (low + high) // 2
            if position.need_with(is_buy, mid, order.unit_fee, order.unit_lock) <= budget:
                low = mid
            else:
                high = mid
        return low

    cdef bint _fok_fillable(self, Market market, Order order, long long time) except -1:
        """Dry run of ``_match``: would the whole order fill right now?"""
        cdef bint is_buy = order.is_buy
        cdef long long limit = order.price
        cdef _BookSide side = market.book.ask_side if is_buy else market.book.bid_side
        cdef long long wanted = order.remaining
        cdef long long quantity, left, price
        cdef dict closable_left = {}
        cdef Py_ssize_t i
        cdef PriceLevel level
        cdef Order maker
        for i in range(side.n - 1, -1, -1):
            level = <PriceLevel>side.levels[i]
            price = level.price
            if (price > limit) if is_buy else (price < limit):
                return False
            maker = level.head
            while maker is not None:
                if maker.has_expiry and maker.expire <= time:
                    maker = maker.nxt
                    continue
                if maker.acct is order.acct:
                    if order.stp is STP_OLDEST:
                        maker = maker.nxt
                        continue
                    return False
                quantity = maker.remaining
                if maker.c_reduce_only:
                    left_obj = closable_left.get(maker.account_id)
                    if left_obj is None:
                        left = _closable(maker.pos, maker.is_buy)
                    else:
                        left = left_obj
                    quantity = min(quantity, left)
                    closable_left[maker.account_id] = left - quantity
                wanted -= quantity
                if wanted <= 0:
                    return True
                maker = maker.nxt
        return False

    cdef object _match(self, Market market, Order taker, object time_obj, long long time):
        """Trade ``taker`` against the book. Returns why matching stopped early, if it did."""
        cdef Book book = market.book
        cdef bint is_buy = taker.is_buy
        cdef long long limit = taker.price
        cdef _BookSide side = book.ask_side if is_buy else book.bid_side
        cdef Position taker_position = taker.pos
        cdef Position maker_position
        cdef PriceLevel level
        cdef Order maker
        cdef long long price, quantity, closable
        while taker.remaining > 0:
            if side.n == 0:
                return None
            level = <PriceLevel>side.levels[side.n - 1]
            price = level.price
            if (price > limit) if is_buy else (price < limit):
                return None
            maker = level.head
            if maker.has_expiry and maker.expire <= time:
                self._expire(maker, time_obj)
                continue
            if maker.acct is taker.acct:
                stp = taker.stp
                if stp is STP_NEWEST:
                    return R_SELF
                if stp is STP_OLDEST:
                    self._cancel(maker, R_SELF, time_obj)
                    continue
                if stp is STP_BOTH:
                    self._cancel(maker, R_SELF, time_obj)
                    return R_SELF
                self._decrement(market, maker, taker, time_obj)
                continue
            quantity = min(taker.remaining, maker.remaining)
            maker_position = maker.pos
            if maker.c_reduce_only:
                quantity = min(quantity, _closable(maker_position, maker.is_buy))
                if quantity == 0:
                    self._cancel(maker, R_REDUCE, time_obj)
                    continue
            if taker.c_reduce_only:
                quantity = min(quantity, _closable(taker_position, is_buy))
                if quantity == 0:
                    return R_REDUCE
            self._fill(market, maker, maker_position, taker, taker_position, price, quantity,
                       time_obj)
        return None

    cdef int _decrement(self, Market market, Order maker, Order taker, object time) except -1:
        """Self-trade ``decrement``: both orders shrink by the overlap; whichever hits zero goes."""
        cdef long long quantity = min(maker.remaining, taker.remaining)
        cdef Position maker_position = maker.pos
        maker_position.shrink_order(maker, quantity)
        market.book.reduce(maker, quantity)
        maker.size -= quantity
        cdef Position taker_position = maker_position  # the same account, the same market
        taker_position.shrink_order(taker, quantity)
        taker.remaining -= quantity
        taker.size -= quantity
        self._emit_amended(maker, False, time)
        self._emit_amended(taker, False, time)
        if maker.remaining == 0:
            self._cancel(maker, R_SELF, time)
        if taker.remaining == 0:
            self._close_live(taker, S_CANCELED, R_SELF, time)
        return 0

    cdef int _fill(self, Market market, Order maker, Position maker_position, Order taker,
                   Position taker_position, long long price, long long quantity,
                   object time) except -1:
        cdef long long trade_id = self.next_trade_id
        self.next_trade_id += 1
        cdef long long maker_fee = market.fee_c(price, quantity, market.maker_fee_bps)
        cdef long long taker_fee = market.fee_c(price, quantity, market.taker_fee_bps)
        maker_position.shrink_order(maker, quantity)
        market.book.reduce(maker, quantity)
        maker.filled += quantity
        taker_position.shrink_order(taker, quantity)
        taker.remaining -= quantity
        taker.filled += quantity
        self.seq += 1
        cdef _Rec *r = self._recs.push(L_TRADE)
        r.f[0].i = self.seq
        _own(r, 1, time)
        r.f[2].i = trade_id
        _own(r, 3, market.market_id)
        _own(r, 4, market.price_obj(price))
        r.f[5].i = quantity
        _own(r, 6, V_BUY if taker.is_buy else V_SELL)
        _own(r, 7, maker.id_obj)
        _own(r, 8, taker.id_obj)
        _own(r, 9, maker.account_id)
        _own(r, 10, taker.account_id)
        r.f[11].i = maker_fee
        r.f[12].i = taker_fee
        cdef str ref = _trade_ref(trade_id)
        cdef long long longs_before = max(taker_position.size, 0) + max(maker_position.size, 0)
        self._book_fill(market, taker.acct, taker_position, taker.is_buy, price, quantity,
                        taker_fee, ref, time)
        self._book_fill(market, maker.acct, maker_position, maker.is_buy, price, quantity,
                        maker_fee, ref, time)
        market.open_interest += (
            max(taker_position.size, 0) + max(maker_position.size, 0) - longs_before
        )
        market.has_last_price = True
        market.c_last_price = price
        if maker.remaining == 0:
            market.book.remove(maker)
            self._close_live(maker, S_FILLED, None, time)
        self._reconcile(maker.acct, maker_position, time)
        self._reconcile(taker.acct, taker_position, time)
        return 0

    cdef int _book_fill(self, Market market, Account account, Position position, bint is_buy,
                        long long price, long long quantity, long long fee, str ref,
                        object time) except -1:
        """Move one side's money for a fill: close what is opposite, open the rest, pay fees."""
        cdef Cell cash = account.cash
        cdef long long tick_value = market.tick_value
        cdef long long size = position.size
        cdef long long closing, held, release, payout, pnl, opening, lock
        if is_buy:
            closing = min(quantity, -size) if size < 0 else 0
        else:
            closing = min(quantity, size) if size > 0 else 0
        if closing:
            held = size if size > 0 else -size
            if closing == held:
                release = position.collateral
            else:
                release = <long long>((<i128>position.collateral * closing) // held)
            payout = ((market.cap - price) if is_buy else (price - market.floor)) * tick_value * closing
            if release:
                self._move(position.cell, cash, release, K_UNLOCK, ref, time)
            pnl = payout - release
            if pnl > 0:
                self._move(market.clearing, cash, pnl, K_PNL, ref, time)
            elif pnl < 0:
                self._move(cash, market.clearing, -pnl, K_PNL, ref, time)
            position.collateral -= release
            position.realized_pnl += pnl
        opening = quantity - closing
        if opening:
            lock = market.lock_per_contract_c(is_buy, price) * opening
            if lock:
                self._move(cash, position.cell, lock, K_LOCK, ref, time)
            position.collateral += lock
        if fee > 0:
            self._move(cash, market.fees, fee, K_FEE, ref, time)
        elif fee < 0:
            self._move(market.fees, cash, -fee, K_REBATE, ref, time)
        position.size = size + quantity if is_buy else size - quantity
        self.seq += 1
        cdef _Rec *r = self._recs.push(L_POSITION)
        r.f[0].i = self.seq
        _own(r, 1, time)
        _own(r, 2, position.account_id)
        _own(r, 3, position.market_id)
        r.f[4].i = position.size
        r.f[5].i = position.collateral
        r.f[6].i = position.realized_pnl
        return 0

    # ------------------------------------------------------------ order entry (order_entry.py)

    cdef long long _check_price(self, Market market, object price, str field) except? -1:
        cdef long long p
        if not _is_int(price):
            raise DomainError(
                ErrorCode.INVALID_PRICE,
                f"{field} must be a whole number of ticks",
                {"field": field},
            )
        if not _fits(price, &p) or not market.floor < p < market.cap:
            raise DomainError(
                ErrorCode.INVALID_PRICE,
                f"{field} must lie strictly between the market's floor and cap",
                {"field": field, "price": price, "floor": market.floor, "cap": market.cap},
            )
        return p

    cdef long long _check_size(self, Market market, object size) except? -1:
        cdef long long s
        if not _is_int(size) or size <= 0:
            raise invalid("size", "must be a positive whole number of contracts")
        if _fits(size, &s) and s < market.min_size:
            raise DomainError(
                ErrorCode.ORDER_SIZE_TOO_SMALL,
                f"order size {size} is below the market's minimum of {market.min_size}",
                {"size": size, "min_size": market.min_size},
            )
        if not _fits(size, &s) or s > market.max_order_size:
            raise DomainError(
                ErrorCode.ORDER_SIZE_TOO_LARGE,
                f"order size {size} is above the market's maximum of {market.max_order_size}",
                {"size": size, "max_order_size": market.max_order_size},
            )
        return s

    cdef int _check_position_limit(self, Market market, Position position, bint is_buy,
                                   long long extra) except -1:
        """Worst case: every open order on this side fills, plus ``extra`` new contracts."""
        cdef long long worst
        if is_buy:
            worst = position.size + position.rem_buy + extra
        else:
            worst = -(position.size - position.rem_sell - extra)
        if worst > market.max_position:
            raise DomainError(
                ErrorCode.POSITION_LIMIT_EXCEEDED,
                f"the order could take the position beyond the limit of {market.max_position}",
                {
                    "max_position": market.max_position,
                    "position": position.size,
                    "open_orders": position.rem_buy if is_buy else position.rem_sell,
                    "requested": extra,
                },
            )
        return 0

    cdef int _place_order(self, object c, object time_obj, long long time) except -1:
        cdef _Layout f = C_PLACE
        cdef Account account = self.account(_get(c, f.off[1], "account_id"))
        cdef Market market = self.market(_get(c, f.off[2], "market_id"))
        self._check_trading(market, time)
        side = _get(c, f.off[3], "side")
        if side is not BUY and side is not SELL:
            side = parse_enum(Side, side, "side")
        order_type = _get(c, f.off[6], "order_type")
        if order_type is not LIMIT and order_type is not MARKET:
            order_type = parse_enum(OrderType, order_type, "type")
        tif = _get(c, f.off[7], "time_in_force")
        if tif is not GTC and tif is not IOC and tif is not FOK and tif is not GTD:
            tif = parse_enum(TimeInForce, tif, "time_in_force")
        stp = _get(c, f.off[12], "stp")
        if (
            stp is not STP_NEWEST and stp is not STP_OLDEST and stp is not STP_BOTH
            and stp is not STP_DECREMENT
        ):
            stp = parse_enum(SelfTradePrevention, stp, "stp")
        cdef bint is_buy = side is BUY
        cdef long long size = self._check_size(market, _get(c, f.off[4], "size"))
        cdef long long price
        price_obj = _get(c, f.off[5], "price")
        if order_type is LIMIT:
            if price_obj is None:
                raise invalid("price", "a limit order needs a price")
            price = self._check_price(market, price_obj, "price")
        else:
            if tif is not IOC:
                raise invalid("time_in_force", "a market order is immediate-or-cancel")
            if price_obj is not None:
                price = self._check_price(market, price_obj, "protection_price")
            else:
                price = market.cap - 1 if is_buy else market.floor + 1
        expire_at = _get(c, f.off[8], "expire_at")
        cdef long long expire = 0
        if tif is GTD:
            if not _fits(expire_at, &expire) or not time < expire <= C_MAX_TIME_MS:
                raise invalid("expire_at", "a GTD order needs an expiry time in the future")
        elif expire_at is not None:
            raise invalid("expire_at", "only GTD orders expire")
        post_only = _get(c, f.off[9], "post_only")
        cdef bint c_post_only = bool(post_only)
        if c_post_only and (tif is IOC or tif is FOK):
            raise invalid("post_only", "a post-only order must be able to rest")
        client_order_id = _get(c, f.off[11], "client_order_id")
        if client_order_id is not None:
            if not isinstance(client_order_id, str) or not (
                0 < len(client_order_id) <= MAX_CLIENT_ORDER_ID
            ):
                raise invalid("client_order_id", f"must be 1 to {MAX_CLIENT_ORDER_ID} characters")
            if client_order_id in account.client_order_ids:
                raise DomainError(
                    ErrorCode.DUPLICATE_CLIENT_ORDER_ID,
                    "a live order already uses this client_order_id",
                    {
                        "client_order_id": client_order_id,
                        "order_id": account.client_order_ids[client_order_id],
                    },
                )
        order_group_id = _get(c, f.off[13], "order_group_id")
        if order_group_id is not None and (
            not isinstance(order_group_id, str)
            or not 0 < len(order_group_id) <= MAX_ORDER_GROUP_ID
        ):
            raise invalid("order_group_id", f"must be 1 to {MAX_ORDER_GROUP_ID} characters")
        if c_post_only:
            touch = self._live_touch(market, not is_buy, time)
            if touch is not None and (price >= touch if is_buy else price <= touch):
                raise DomainError(
                    ErrorCode.POST_ONLY_WOULD_CROSS,
                    "a post-only order may not take liquidity",
                    {"price": price, "opposite_best": touch},
                )
        # Positions are never dropped, so the last one found stays this account's in its market.
        cdef Position position = account.last_position
        if position is None or position.mkt is not market:
            position = account.positions.get(market.market_id)
            if position is None:  # registered only once the order is accepted
                position = Position(account.account_id, market)
            else:
                account.last_position = position
        cdef long long position_size = position.size
        cdef long long closable
        reduce_only = _get(c, f.off[10], "reduce_only")
        cdef bint c_reduce_only = bool(reduce_only)
        if c_reduce_only:
            closable = -position_size if is_buy else position_size
            if size > closable:
                raise DomainError(
                    ErrorCode.REDUCE_ONLY_WOULD_INCREASE,
                    "a reduce-only order may not exceed the position it closes",
                    {"size": size, "position": position_size},
                )
        if not c_reduce_only:
            self._check_position_limit(market, position, is_buy, size)

        cdef Order order = Order.__new__(Order)
        order.order_id = self.next_order_id
        order.id_obj = order.order_id
        order.account_id = account.account_id
        order.market_id = market.market_id
        order.side = side
        order.is_buy = is_buy
        order.order_type = order_type
        order.price = price
        order.size = size
        order.remaining = size
        order.time_in_force = tif
        order.has_expiry = expire_at is not None
        order.expire = expire
        order.post_only = post_only
        order.reduce_only = reduce_only
        order.c_reduce_only = c_reduce_only
        order.client_order_id = client_order_id
        order.order_group_id = order_group_id
        order.stp = stp
        order.status = S_OPEN
        order.created_at = time
        order.pos = position
        order.acct = account
        order.mkt = market
        order.unit_lock = market.lock_per_contract_c(is_buy, price)
        order.unit_fee = market.fee_reserve_c(price)
        cap_reason = None
        cdef long long fillable, worst, affordable
        if order_type is MARKET:
            self._market_order_reach(market, order, time, &fillable, &worst)
            order.price = worst
            order.unit_lock = market.lock_per_contract_c(is_buy, worst)
            order.unit_fee = market.fee_reserve_c(worst)
            affordable = self._affordable(account, position, order, size)
            if fillable and affordable == 0:
                order.remaining = 1
                self._reserve_check(account, position, order)  # raises with the figures
            cap_reason = R_BALANCE if affordable < fillable else R_IOC
            order.remaining = affordable
        else:
            self._reserve_check(account, position, order)
        cdef bint fok_unfillable = tif is FOK and not self._fok_fillable(market, order, time)

        # ---- accepted: from here on the command changes state.
        self.next_order_id += 1
        self.seq += 1
        cdef _Rec *r = self._recs.push(L_ACCEPTED)
        r.f[0].i = self.seq
        _own(r, 1, time_obj)
        _own(r, 2, order.id_obj)
        _own(r, 3, account.account_id)
        _own(r, 4, market.market_id)
        _own(r, 5, V_BUY if is_buy else V_SELL)
        _own(r, 6, _val(order_type))
        _own(r, 7, market.price_obj(order.price))
        r.f[8].i = size
        _own(r, 9, _val(tif))
        _own(r, 10, expire_at)
        _own(r, 11, post_only)
        _own(r, 12, reduce_only)
        _own(r, 13, client_order_id)
        _own(r, 14, _val(stp))
        _own(r, 15, order_group_id)
        if fok_unfillable:
            self._close(order, S_CANCELED, R_FOK, time_obj)
            return 0
        cut_reason = None
        if order.remaining < size:
            cut_reason = cap_reason
            order.size = order.remaining
            self._emit_amended(order, False, time_obj)
        if position.cell is None:
            position.cell = self.ledger.cell(position.collateral_key)
            account.positions[market.market_id] = position
            market.positions[account.account_id] = position
        self.orders.put(order.order_id, order)
        if client_order_id is not None:
            account.client_order_ids[client_order_id] = order.id_obj
        position.add_order(order)
        self._reconcile(account, position, time_obj)
        self._take(market, account, position, order, time_obj, time, cut_reason)
        return 0

    cdef Order _owned_order(self, Account account, object order_id):
        cdef long long key
        cdef Order order = None
        if _fits(order_id, &key):
            order = self.orders.find(key)
        elif isinstance(order_id, int):  # a bool or an int subclass, found as a dict finds it
            order = self.orders._lookup(order_id, None)
        if order is None or order.acct is not account:
            raise DomainError(
                ErrorCode.ORDER_NOT_FOUND,
                f"no open order {order_id!r} for this account",
                {"order_id": order_id},
            )
        return <Order>order

    cdef int _cancel_order(self, object c, object time_obj, long long time) except -1:
        reason = R_USER
        if CANCEL_HAS_REASON:
            reason = _get(c, C_CANCEL.off[3], "reason")
            if reason is not R_USER:
                reason = parse_enum(CancelReason, reason, "reason")
                if reason not in REQUESTED_CANCEL_REASONS:
                    raise invalid(
                        "reason",
                        "a cancel gives the reason user, disconnect, heartbeat_expired or "
                        "order_group_limit",
                    )
        cdef Account account = self.account(_get(c, C_CANCEL.off[1], "account_id"))
        cdef Order order = self._owned_order(account, _get(c, C_CANCEL.off[2], "order_id"))
        cdef Market market = order.mkt
        self._cancel(order, reason, time_obj)
        self._flush_book(market, time_obj)
        return 0

    cdef int _cancel_all(self, object c, object time_obj, long long time) except -1:
        cdef Account account = self.account(c.account_id)
        cdef Position position
        market_id = c.market_id
        if market_id is not None:
            self.market(market_id)
            positions = [account.positions[market_id]] if market_id in account.positions else []
        else:
            positions = [account.positions[m] for m in sorted(account.positions)]
        for position in positions:
            live = sorted(position.order_ids())
            for order_id in live:
                self._cancel(self.orders.find(order_id), R_USER, time_obj)
            if live:
                self._flush_book(position.mkt, time_obj)
        return 0

    cdef int _amend_order(self, object c, object time_obj, long long time) except -1:
        cdef _Layout f = C_AMEND
        cdef Account account = self.account(_get(c, f.off[1], "account_id"))
        cdef Order order = self._owned_order(account, _get(c, f.off[2], "order_id"))
        cdef Market market = order.mkt
        self._check_trading(market, time)
        if order.has_expiry and order.expire <= time:
            raise DomainError(
                ErrorCode.ORDER_NOT_CANCELABLE,
                f"order {order.order_id} expired at {order.expire}",
                {"order_id": order.order_id, "expire_at": order.expire},
            )
        new_price = _get(c, f.off[3], "price")
        new_size = _get(c, f.off[4], "size")
        if new_price is None and new_size is None:
            raise invalid("size", "an amend needs a new price or a new size")
        cdef long long price = (
            order.price if new_price is None else self._check_price(market, new_price, "price")
        )
        cdef long long size = order.size if new_size is None else self._check_size(market, new_size)
        cdef long long remaining = size - order.filled
        if remaining <= 0:
            raise invalid("size", f"must exceed the {order.filled} contracts already filled")
        cdef Position position = order.pos
        cdef bint is_buy = order.is_buy
        cdef long long reduction
        if price == order.price and remaining <= order.remaining:
            if remaining < order.remaining:
                reduction = order.remaining - remaining
                position.shrink_order(order, reduction)
                market.book.reduce(order, reduction)
                order.size -= reduction
            self._emit_amended(order, False, time_obj)
            self._reconcile(account, position, time_obj)
            self._flush_book(market, time_obj)
            return 0
        if order.post_only:
            touch = self._live_touch(market, not is_buy, time)
            if touch is not None and (price >= touch if is_buy else price <= touch):
                raise DomainError(
                    ErrorCode.POST_ONLY_WOULD_CROSS,
                    "a post-only order may not take liquidity",
                    {"price": price, "opposite_best": touch},
                )
        if order.c_reduce_only and remaining > _closable(position, is_buy):
            raise DomainError(
                ErrorCode.REDUCE_ONLY_WOULD_INCREASE,
                "a reduce-only order may not exceed the position it closes",
                {"size": remaining, "position": position.size},
            )
        cdef long long old_price = order.price, old_remaining = order.remaining
        cdef long long old_lock = order.unit_lock, old_fee = order.unit_fee
        position.remove_order(order)
        try:
            if not order.c_reduce_only:
                self._check_position_limit(market, position, is_buy, remaining)
            order.price, order.remaining = price, remaining
            order.unit_lock = market.lock_per_contract_c(is_buy, price)
            order.unit_fee = market.fee_reserve_c(price)
            self._reserve_check(account, position, order)
        except DomainError:
            order.price, order.remaining = old_price, old_remaining
            order.unit_lock, order.unit_fee = old_lock, old_fee
            position.add_order(order)
            raise
        order.price, order.remaining = old_price, old_remaining
        market.book.remove(order)
        order.price, order.remaining = price, remaining
        order.size = size
        position.add_order(order)
        self._emit_amended(order, True, time_obj)
        self._reconcile(account, position, time_obj)
        self._take(market, account, position, order, time_obj, time, None)
        return 0

    cdef int _expire_orders(self, object c, object time_obj, long long time) except -1:
        up_to = c.up_to
        if up_to is None:
            self._sweep_expired(time_obj, time)
            return 0
        if not _is_int(up_to):
            raise invalid("up_to", "must be milliseconds since the Unix epoch")
        until = min(up_to, time_obj)
        # Nothing is due before 1 ms (expire_at > the placing time >= 0).
        self._sweep_expired(until, until if until >= 0 else -1)
        return 0

    cdef int _sweep_expired(self, object time_obj, long long time) except -1:
        gtd = self._gtd
        cdef dict touched = {}
        cdef Order order
        while gtd and gtd[0][0] <= time:
            expire_at, order_id = heapq.heappop(gtd)
            found = self.orders.find(order_id)
            if found is None or (<Order>found).expire != expire_at:
                continue  # already gone: filled or canceled before its time
            order = <Order>found
            self._expire(order, time_obj)
            touched[order.market_id] = order.mkt
        for market in touched.values():
            self._flush_book(<Market>market, time_obj)
        return 0

    # ------------------------------------------------------------ accounts and markets (engine.py)

    cdef Account _new_account(self, str account_id):
        cdef Account account = Account.__new__(Account)
        account.account_id = account_id
        account.cash_key = f"cash:{account_id}"
        account.orders_key = f"orders:{account_id}"
        account.positions = {}
        account.client_order_ids = {}
        account.cash = self.ledger.cell(account.cash_key)
        account.orders = self.ledger.cell(account.orders_key)
        return account

    cdef int _create_account(self, object c, object time) except -1:
        account_id = c.account_id
        if not isinstance(account_id, str) or not account_id:
            raise invalid("account_id", "must be a non-empty string")
        if account_id in self.accounts:
            raise DomainError(
                ErrorCode.ACCOUNT_EXISTS,
                f"account {account_id!r} already exists",
                {"account_id": account_id},
            )
        self.accounts[account_id] = self._new_account(account_id)
        self.seq += 1
        cdef _Rec *r = self._recs.push(L_ACCOUNT)
        r.f[0].i = self.seq
        _own(r, 1, time)
        _own(r, 2, account_id)
        return 0

    cdef int _deposit(self, object c, object time) except -1:
        cdef Account account = self.account(c.account_id)
        cdef long long amount = _check_amount(c.amount)
        # Every balance is bounded by what came in, so bounding that bounds them all. The store
        # keeps 64-bit integers too; past that the reference would fail there instead.
        if <i128>self.external.value - amount < -9223372036854775807:
            raise OverflowError("deposits beyond 2**63 micro-USDC cannot be held")
        self._move(self.external, account.cash, amount, "deposit", c.ref, time)
        return 0

    cdef int _withdraw(self, object c, object time) except -1:
        cdef Account account = self.account(c.account_id)
        cdef long long amount = _check_amount(c.amount)
        cdef long long available = account.cash.value
        if amount > available:
            raise DomainError(
                ErrorCode.INSUFFICIENT_BALANCE,
                "insufficient available balance for this withdrawal",
                {"required": amount, "available": available},
            )
        self._move(account.cash, self.external, amount, "withdrawal", c.ref, time)
        return 0

    cdef Market _new_market(self, str market_id, object kind, long long tick_value,
                            long long floor, long long cap, long long close_time,
                            long long min_size, long long max_order_size,
                            long long max_position, long long maker_fee_bps,
                            long long taker_fee_bps):
        cdef Market market = Market.__new__(Market)
        market.market_id = market_id
        market.id_obj = market_id
        market.kind = kind
        market.tick_value = tick_value
        market.floor = floor
        market.cap = cap
        market.close_time = close_time
        market.min_size = min_size
        market.max_order_size = max_order_size
        market.max_position = max_position
        market.maker_fee_bps = maker_fee_bps
        market.taker_fee_bps = taker_fee_bps
        market.fee_reserve_bps = max(maker_fee_bps, taker_fee_bps, 0)
        market.status = M_PENDING
        market.book = Book()
        market.settlement = None
        market.open_interest = 0
        market.has_last_price = False
        market.positions = {}
        market.clearing = self.ledger.cell(f"clearing:{market_id}")
        market.fees = self.ledger.cell(f"fees:{market_id}")
        market.price_objs = list(range(floor, cap + 1)) if cap - floor <= 100_000 else None
        return market

    cdef int _create_market(self, object c, object time) except -1:
        market_id = c.market_id
        if not isinstance(market_id, str) or not market_id:
            raise invalid("market_id", "must be a non-empty string")
        if market_id in self.markets:
            raise DomainError(
                ErrorCode.MARKET_EXISTS,
                f"market {market_id!r} already exists",
                {"market_id": market_id},
            )
        kind = parse_enum(MarketKind, c.kind, "kind")
        for field in (
            "tick_value",
            "floor",
            "cap",
            "close_time",
            "min_size",
            "max_order_size",
            "max_position",
            "maker_fee_bps",
            "taker_fee_bps",
        ):
            if not _is_int(getattr(c, field)):
                raise invalid(field, "must be an integer")
        if c.tick_value < MIN_TICK_VALUE:
            raise invalid("tick_value", f"must be at least {MIN_TICK_VALUE} micro-USDC")
        if c.floor < 0 or c.cap <= c.floor:
            raise invalid("cap", "floor must be >= 0 and cap above floor")
        if c.cap * c.tick_value > MAX_CONTRACT_VALUE:
            raise invalid("cap", f"a contract may pay at most {MAX_CONTRACT_VALUE} micro-USDC")
        if not 0 <= c.close_time <= MAX_TIME_MS:
            raise invalid("close_time", "must be milliseconds between 1970 and 9999")
        if kind is BINARY and (c.floor != 0 or c.cap * c.tick_value != MICRO):
            raise invalid("cap", "a binary market runs from 0 to 1")
        if c.min_size < 1:
            raise invalid("min_size", "must be at least 1")
        if not c.min_size <= c.max_order_size <= MAX_SIZE:
            raise invalid("max_order_size", f"must be between min_size and {MAX_SIZE}")
        if not 1 <= c.max_position <= MAX_SIZE:
            raise invalid("max_position", f"must be between 1 and {MAX_SIZE}")
        if not 0 <= c.taker_fee_bps <= MAX_FEE_BPS:
            raise invalid("taker_fee_bps", f"must be between 0 and {MAX_FEE_BPS}")
        if not -c.taker_fee_bps <= c.maker_fee_bps <= MAX_FEE_BPS:
            raise invalid("maker_fee_bps", "a rebate may not exceed the taker fee")
        market = self._new_market(
            market_id,
            kind,
            c.tick_value,
            c.floor,
            c.cap,
            c.close_time,
            c.min_size,
            c.max_order_size,
            c.max_position,
            c.maker_fee_bps,
            c.taker_fee_bps,
        )
        self.markets[market_id] = market
        self.seq += 1
        cdef _Rec *r = self._recs.push(L_MARKET)
        r.f[0].i = self.seq
        _own(r, 1, time)
        _own(r, 2, market_id)
        _own(r, 3, kind.value)
        _own(r, 4, c.floor)
        _own(r, 5, c.cap)
        _own(r, 6, c.tick_value)
        _own(r, 7, c.close_time)
        return 0

    cdef int _change_market_status(self, object c, object time_obj, long long time) except -1:
        cdef Market market = self.market(c.market_id)
        status = parse_enum(MarketStatus, c.status, "status")
        if status is not M_OPEN and status is not M_HALTED and status is not M_CLOSED:
            raise DomainError(
                ErrorCode.INVALID_TRANSITION,
                "resolving and settled are reached through settlement commands",
                {"market_id": market.market_id, "status": str(market.status), "to": str(status)},
            )
        market.check_transition(status)
        self._set_status(market, status, time_obj)
        if status is M_CLOSED:
            for order in market.book._orders():
                self._cancel(<Order>order, R_CLOSED, time_obj)
            self._flush_book(market, time_obj)
        return 0

    # ------------------------------------------------------------ settlement (settling.py)

    cdef int _propose_settlement(self, object c, object time) except -1:
        cdef Market market = self.market(c.market_id)
        if market.status is not M_CLOSED:
            raise DomainError(
                ErrorCode.INVALID_TRANSITION,
                "a settlement is proposed for a closed market",
                {"market_id": market.market_id, "status": str(market.status)},
            )
        value = c.value
        if not _is_int(value):
            raise DomainError(
                ErrorCode.INVALID_SETTLEMENT,
                "the settlement value must be an integer of micro price units",
                {"value": value},
            )
        evidence_hash = c.evidence_hash
        if not isinstance(evidence_hash, str) or len(evidence_hash) != 64:
            raise invalid("evidence_hash", "must be the hex SHA-256 of the canonical evidence")
        proposer = c.proposer
        if not isinstance(proposer, str) or not proposer:
            raise invalid("proposer", "must name who proposes")
        dispute_window = c.dispute_window
        if not _is_int(dispute_window) or dispute_window < 0:
            raise invalid("dispute_window", "must be a whole number of milliseconds, at least 0")
        low = market.floor * market.tick_value
        high = market.cap * market.tick_value
        if market.kind is BINARY:
            if value not in (low, high):
                raise DomainError(
                    ErrorCode.INVALID_SETTLEMENT,
                    "a binary market settles to exactly 0 or 1",
                    {"value": value},
                )
        else:
            value = min(max(value, low), high)
        self._set_status(market, M_RESOLVING, time)
        final_after = time + dispute_window
        market.settlement = Settlement(value, evidence_hash, proposer, time, final_after)
        self.seq += 1
        self._emit(
            ev.SettlementProposed(
                self.seq, time, market.market_id, value, evidence_hash, proposer, final_after
            )
        )
        return 0

    cdef int _overturn_settlement(self, object c, object time) except -1:
        cdef Market market = self.market(c.market_id)
        if market.status is not M_RESOLVING or market.settlement is None:
            raise DomainError(
                ErrorCode.INVALID_TRANSITION,
                "only a proposed settlement can be overturned",
                {"market_id": market.market_id, "status": str(market.status)},
            )
        by = c.by
        if not isinstance(by, str) or not by:
            raise invalid("by", "must name who overturns")
        settlement = market.settlement
        market.settlement = None
        self._set_status(market, M_CLOSED, time)
        self.seq += 1
        self._emit(
            ev.SettlementOverturned(
                self.seq, time, market.market_id, settlement.value, settlement.evidence_hash, by
            )
        )
        return 0

    cdef int _finalize_settlement(self, object c, object time) except -1:
        cdef Market market = self.market(c.market_id)
        cdef Position position
        settlement = market.settlement
        if market.status is not M_RESOLVING or settlement is None:
            raise DomainError(
                ErrorCode.INVALID_TRANSITION,
                "only a proposed settlement can be finalized",
                {"market_id": market.market_id, "status": str(market.status)},
            )
        if time < settlement.final_after:
            raise DomainError(
                ErrorCode.INVALID_TRANSITION,
                "the dispute window is still open",
                {"market_id": market.market_id, "final_after": settlement.final_after},
            )
        value = settlement.value
        long_value = value - market.floor * market.tick_value
        short_value = market.cap * market.tick_value - value
        ref = f"settle:{market.market_id}"
        total = 0
        for position in market.positions.values():
            size = position.size
            if size == 0:
                continue
            payout = long_value * size if size > 0 else short_value * -size
            cash = (<Account>self.accounts[position.account_id]).cash
            if position.collateral:
                self._move(position.cell, cash, position.collateral, "settlement", ref, time)
            pnl = payout - position.collateral
            if pnl > 0:
                self._move(market.clearing, cash, pnl, "settlement_pnl", ref, time)
            elif pnl < 0:
                self._move(cash, market.clearing, -pnl, "settlement_pnl", ref, time)
            position.realized_pnl += pnl
            position.collateral = 0
            position.size = 0
            total += payout
            self.seq += 1
            self._emit(
                ev.PositionChanged(
                    self.seq, time, position.account_id, market.market_id, 0, 0,
                    position.realized_pnl,
                )
            )
        market.open_interest = 0
        self._set_status(market, M_SETTLED, time)
        self.seq += 1
        self._emit(
            ev.SettlementFinalized(
                self.seq, time, market.market_id, value, settlement.evidence_hash, total
            )
        )
        return 0

    # ------------------------------------------------------------ snapshot (snapshot.py)

    def _restore(self, dict data):
        """Load a snapshot (``domain.snapshot.snapshot``'s format) into this fresh engine."""
        cdef Account account
        cdef Market market
        cdef Position position
        cdef Order order
        cdef Cell cell
        self.seq = data["seq"]
        self.next_order_id = data["next_order_id"]
        self.next_trade_id = data["next_trade_id"]
        for account_id in data["accounts"]:
            self.accounts[account_id] = self._new_account(account_id)
        for m in data["markets"]:
            market = self._new_market(
                m["market_id"],
                MarketKind(m["kind"]),
                m["tick_value"],
                m["floor"],
                m["cap"],
                m["close_time"],
                m["min_size"],
                m["max_order_size"],
                m["max_position"],
                m["maker_fee_bps"],
                m["taker_fee_bps"],
            )
            market.status = MarketStatus(m["status"])
            market.open_interest = m["open_interest"]
            if m["last_price"] is not None:
                market.has_last_price = True
                market.c_last_price = m["last_price"]
            s = m["settlement"]
            if s is not None:
                market.settlement = Settlement(
                    s["value"], s["evidence_hash"], s["proposer"], s["proposed_at"],
                    s["final_after"],
                )
            self.markets[market.market_id] = market
            for p in m["positions"]:
                account = self.accounts[p["account_id"]]
                position = Position(account.account_id, market)
                position.size = p["size"]
                position.collateral = p["collateral"]
                position.realized_pnl = p["realized_pnl"]
                position.held_buy = p["held_buy"]
                position.held_sell = p["held_sell"]
                position.cell = self.ledger.cell(position.collateral_key)
                account.positions[market.market_id] = position
                market.positions[account.account_id] = position
            for o in m["orders"]:
                account = self.accounts[o["account_id"]]
                position = account.positions[market.market_id]
                order = Order.__new__(Order)
                order.order_id = o["order_id"]
                order.id_obj = order.order_id
                order.account_id = account.account_id
                order.market_id = market.market_id
                order.side = Side(o["side"])
                order.is_buy = order.side is BUY
                order.order_type = OrderType(o["order_type"])
                order.price = o["price"]
                order.size = o["size"]
                order.remaining = o["remaining"]
                order.filled = o["filled"]
                order.time_in_force = TimeInForce(o["time_in_force"])
                order.has_expiry = o["expire_at"] is not None
                order.expire = o["expire_at"] if order.has_expiry else 0
                order.post_only = o["post_only"]
                order.reduce_only = o["reduce_only"]
                order.c_reduce_only = bool(o["reduce_only"])
                order.client_order_id = o["client_order_id"]
                order.order_group_id = o["order_group_id"]
                order.stp = SelfTradePrevention(o["stp"])
                order.status = S_OPEN
                order.created_at = o["created_at"]
                order.pos = position
                order.acct = account
                order.mkt = market
                order.unit_lock = market.lock_per_contract_c(order.is_buy, order.price)
                order.unit_fee = market.fee_reserve_c(order.price)
                market.book.add(order)
                position.add_order(order)
                self.orders.put(order.order_id, order)
                if order.client_order_id is not None:
                    account.client_order_ids[order.client_order_id] = order.id_obj
                if order.has_expiry:
                    self._gtd.append((order.expire, order.id_obj))
            market.book.t_n = 0
        for key, value in data["ledger"].items():
            cell = self.ledger.cell(key)
            cell.value = value
            cell.present = True
        heapq.heapify(self._gtd)


    # ------------------------------------------------------------ compact snapshot (snapshot_codec.py)

    def _export_orders(self, str market_id, dict accounts, dict sides, dict types, dict tifs,
                       dict stps):
        """A market's resting orders in book order, as ``snapshot_codec``'s nine int64 columns
        (order id, account index, price, size, remaining, filled, expiry, created, flags) and
        the lists of client order ids and order group ids: the reference's ``book.orders()``
        read without a Python attribute lookup per field."""
        cdef Market market = self.markets[market_id]
        cdef list orders = market.book._orders()
        cdef Py_ssize_t n = len(orders), i
        cdef carray.array template = array.array("q")
        cdef list columns = [carray.clone(template, n, False) for _ in range(9)]
        cdef long long[::1] c_id = columns[0], c_acct = columns[1], c_price = columns[2]
        cdef long long[::1] c_size = columns[3], c_rem = columns[4], c_filled = columns[5]
        cdef long long[::1] c_exp = columns[6], c_created = columns[7], c_flags = columns[8]
        cdef list coids = [None] * n
        cdef list gids = [None] * n
        cdef Order o
        cdef long long flags
        for i in range(n):
            o = <Order>orders[i]
            c_id[i] = o.order_id
            c_acct[i] = <long long>accounts[o.account_id]
            c_price[i] = o.price
            c_size[i] = o.size
            c_rem[i] = o.remaining
            c_filled[i] = o.filled
            c_exp[i] = o.expire if o.has_expiry else 0
            c_created[i] = o.created_at
            flags = (
                <long long>sides[o.side]
                | (<long long>types[o.order_type] << 4)
                | (<long long>tifs[o.time_in_force] << 8)
                | (<long long>stps[o.stp] << 12)
            )
            if o.post_only:
                flags |= 1 << 16
            if o.c_reduce_only:
                flags |= 1 << 17
            if o.has_expiry:
                flags |= 1 << 18
            c_flags[i] = flags
            coids[i] = o.client_order_id
            gids[i] = o.order_group_id
        return columns, coids, gids

    def _restore_orders(self, str market_id, list accounts, list positions, list columns,
                        list coids, list gids, tuple sides, tuple types, tuple tifs,
                        tuple stps):
        """Put a market's resting orders (``_export_orders``'s columns, in book order) back on
        its book and positions; ``_finish_restore`` rebuilds the expiry heap afterwards.

        ``accounts`` are the snapshot's accounts by index and ``positions`` this market's by the
        same index (``_restore_positions``'s answer): a list index per order instead of two
        dict lookups, most of this loop's time at a million orders."""
        cdef Market market = self.markets[market_id]
        cdef long long[::1] c_id = columns[0], c_acct = columns[1], c_price = columns[2]
        cdef long long[::1] c_size = columns[3], c_rem = columns[4], c_filled = columns[5]
        cdef long long[::1] c_exp = columns[6], c_created = columns[7], c_flags = columns[8]
        cdef Py_ssize_t n = c_id.shape[0], i
        cdef Py_ssize_t n_accounts = len(accounts)
        cdef long long a
        cdef Account account
        cdef Position position
        cdef object found
        cdef Order order
        cdef PriceLevel level
        cdef Book book = market.book
        cdef OrderIndex orders = self.orders
        cdef long long flags
        if len(positions) != n_accounts or len(coids) != n or len(gids) != n:
            raise ValueError("order columns differ in length")
        for i in range(n):
            flags = c_flags[i]
            a = c_acct[i]
            if not 0 <= a < n_accounts:
                raise IndexError(f"order {c_id[i]}: no account {a}")
            found = positions[a]
            if found is None:
                raise KeyError(f"order {c_id[i]}: its account has no position in {market_id}")
            position = <Position>found
            account = <Account>accounts[a]
            order = Order.__new__(Order)
            order.order_id = c_id[i]
            order.id_obj = order.order_id
            order.account_id = account.account_id
            order.market_id = market.market_id
            order.side = sides[flags & 15]
            order.is_buy = order.side is BUY
            order.order_type = types[(flags >> 4) & 15]
            order.price = c_price[i]
            order.size = c_size[i]
            order.remaining = c_rem[i]
            order.filled = c_filled[i]
            order.time_in_force = tifs[(flags >> 8) & 15]
            order.has_expiry = (flags >> 18) & 1
            order.expire = c_exp[i]
            order.post_only = bool((flags >> 16) & 1)
            order.c_reduce_only = (flags >> 17) & 1
            order.reduce_only = bool(order.c_reduce_only)
            order.client_order_id = coids[i]
            order.order_group_id = gids[i]
            order.stp = stps[(flags >> 12) & 15]
            order.status = S_OPEN
            order.created_at = c_created[i]
            order.pos = position
            order.acct = account
            order.mkt = market
            order.unit_lock = market.lock_per_contract_c(order.is_buy, order.price)
            order.unit_fee = market.fee_reserve_c(order.price)
            # Book.add without noting the level as touched: nothing is published from here.
            level = (book.bid_side if order.is_buy else book.ask_side).get_or_add(order.price)
            level.push(order)
            level.total += order.remaining
            position.add_order(order)
            orders.put(order.order_id, order)
            if order.client_order_id is not None:
                account.client_order_ids[order.client_order_id] = order.id_obj
            if order.has_expiry:
                self._gtd.append((order.expire, order.id_obj))
        book.t_n = 0

    def _export_positions(self, str market_id, dict accounts):
        """A market's positions in their order, as six int64 columns (account index, size,
        collateral, realized pnl, held buy, held sell)."""
        cdef Market market = self.markets[market_id]
        cdef list positions = list(market.positions.values())
        cdef Py_ssize_t n = len(positions), i
        cdef carray.array template = array.array("q")
        cdef list columns = [carray.clone(template, n, False) for _ in range(6)]
        cdef long long[::1] c_acct = columns[0], c_size = columns[1], c_coll = columns[2]
        cdef long long[::1] c_pnl = columns[3], c_hb = columns[4], c_hs = columns[5]
        cdef Position p
        for i in range(n):
            p = <Position>positions[i]
            c_acct[i] = <long long>accounts[p.account_id]
            c_size[i] = p.size
            c_coll[i] = p.collateral
            c_pnl[i] = p.realized_pnl
            c_hb[i] = p.held_buy
            c_hs[i] = p.held_sell
        return columns

    def _restore_positions(self, str market_id, list accounts, list columns):
        """``_export_positions``'s columns back, before the market's orders; returns the
        market's positions by account index (None where an account has none), which
        ``_restore_orders`` takes. ``accounts`` are the snapshot's accounts by index."""
        cdef Market market = self.markets[market_id]
        cdef long long[::1] c_acct = columns[0], c_size = columns[1], c_coll = columns[2]
        cdef long long[::1] c_pnl = columns[3], c_hb = columns[4], c_hs = columns[5]
        cdef Py_ssize_t n = c_acct.shape[0], i
        cdef Py_ssize_t n_accounts = len(accounts)
        cdef long long a
        cdef Account account
        cdef Position position
        cdef list by_account = [None] * n_accounts
        cdef object market_key = market.market_id
        for i in range(n):
            a = c_acct[i]
            if not 0 <= a < n_accounts:
                raise IndexError(f"position in {market_id}: no account {a}")
            if by_account[a] is not None:
                raise ValueError(f"two positions of one account in {market_id}")
            account = <Account>accounts[a]
            position = Position.__new__(Position, account.account_id, market)
            position.size = c_size[i]
            position.collateral = c_coll[i]
            position.realized_pnl = c_pnl[i]
            position.held_buy = c_hb[i]
            position.held_sell = c_hs[i]
            position.cell = self.ledger.cell(position.collateral_key)
            account.positions[market_key] = position
            market.positions[account.account_id] = position
            by_account[a] = position
        return by_account

    def _finish_restore(self):
        heapq.heapify(self._gtd)


def restore(dict data):
    """A compiled engine from a snapshot taken of either engine (``domain.snapshot``'s format)."""
    engine = Engine()
    engine._restore(data)
    return engine
