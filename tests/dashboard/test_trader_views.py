"""What a trader reads on the dashboard, in headless Chromium against a real server (issue 19).

- A 390 px phone: no sideways scroll on any page, the market panel readable.
- Binary markets in YES/NO terms: the chance of YES in the header and the list, a ticket that
  buys YES or NO (a NO buy is a YES sell at 1 − price) and shows cost and payout first.
- The book marks the user's own orders, the open orders say how much rests ahead of each, and
  the market page shows the position.
- ``INSUFFICIENT_BALANCE`` in the ticket says what the order needs and what is available.
- A closed or resolving market refuses orders on the ticket and says why; the header follows
  the market's status live; the settlement box says when the dispute window ends; a settled
  position stays on the account page, and so do the fees and rebates of each month.
- One number rule: the page's helpers write numbers as the command line's do.
- The markets list says where each market belongs (category · series · event) and finds
  markets by category, and by series, event or tag as well as by name.

This module runs its own server with a 2 s dispute window, so a settlement can be finalized.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from ballast.cli.numbers import chance_text, money_text, price_text, yes_no_text
from ballast_exchange.dashboard import routes
from tests.live_server import NO_LIMITS, LiveServer, live_server
from tests.signed_client import Admin

from .conftest import Dashboard, unique
from .test_dashboard import busy_market, eventually, shot, watch_errors

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("trader-views") / "var"
    with live_server(data_dir, env="sandbox", dispute_window_s=2, **NO_LIMITS) as s:
        yield s


def signed_in(server: LiveServer, context: Any) -> Dashboard:
    """A new user (sandbox: funded with test USDC), signed in in ``context`` too."""
    user = Dashboard(server).signup()
    token = user.http.cookies[routes.COOKIE]
    context.add_cookies([{"name": routes.COOKIE, "value": token, "url": server.url}])
    return user


def no_sideways_scroll(page: Any) -> None:
    sizes = page.evaluate(
        "({doc: document.documentElement.scrollWidth, body: document.body.scrollWidth,"
        " inner: window.innerWidth})"
    )
    assert sizes["doc"] <= sizes["inner"] and sizes["body"] <= sizes["inner"], sizes


def width_of(page: Any, selector: str) -> float:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return float(box["width"])


def test_a_phone_never_scrolls_sideways(server: LiveServer, admin: Admin, browser: Any) -> None:
    market_id = unique("phone")
    busy_market(admin, market_id)
    context = browser.new_context(viewport=PHONE, base_url=server.url, is_mobile=True)
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        errors = watch_errors(page)
        page.goto("/#/login")
        page.locator("#login-form").wait_for()
        no_sideways_scroll(page)

        page.goto("/")
        page.locator(f'tr.market-row[data-market="{market_id}"]').wait_for()
        no_sideways_scroll(page)  # the wide table scrolls inside its panel
        shot(page, "phone-markets")

        user = signed_in(server, context)
        page.close()
        page = context.new_page()  # a fresh load reads the new session
        errors = watch_errors(page)
        page.goto(f"/#/market/{market_id}")
        page.locator("#feed-state.on").wait_for()
        page.locator('#book-asks .lvl[data-price="0.370"]').wait_for()
        page.locator("#ticket-submit").wait_for()
        no_sideways_scroll(page)
        # The market panel reads as text, not one character a line: nearly the screen's width,
        # its question on a few lines.
        assert width_of(page, ".about") >= 300
        question = page.locator(".about .question").bounding_box()
        assert question is not None and question["height"] < 80, question
        assert width_of(page, "#ticket") >= 300 and width_of(page, "#book") >= 300
        shot(page, "phone-market")

        page.goto("/#/account")
        page.locator("#card-total").wait_for()
        no_sideways_scroll(page)
        shot(page, "phone-account")
        page.goto("/#/keys")
        page.locator("#key-form").wait_for()
        no_sideways_scroll(page)
        assert errors == []
        user.close()
    finally:
        context.close()


def test_binary_ticket_buys_yes_or_no_and_the_page_shows_my_orders_and_position(
    server: LiveServer, admin: Admin, context: Any
) -> None:
    market_id = unique("yesno")
    busy_market(admin, market_id)  # asks 0.36–0.39, bids 0.26–0.30, last 0.36
    first = admin.account(unique("first"), 1_000)  # rests 7 at 0.45 before the user does
    ask = {"market_id": market_id, "side": "sell", "price": "0.45", "size": 7}
    assert first.post("/orders", ask).status_code == 201
    first.close()
    user = signed_in(server, context)
    page = context.new_page()
    errors = watch_errors(page)

    # The list and the header read the last price as the chance of YES.
    page.goto("/")
    row = page.locator(f'tr.market-row[data-market="{market_id}"]')
    row.wait_for()
    assert "YES 36.0% / NO 64.0%" in row.locator("td.chance").inner_text()
    page.goto(f"/#/market/{market_id}")
    page.locator("#feed-state.on").wait_for()
    assert page.locator("#t-chance").inner_text() == "YES 36.0% / NO 64.0%"
    assert page.locator("#book .lvl.head").inner_text().startswith("YES price")
    assert "NO 0.640" in page.locator('#book-asks .lvl[data-price="0.360"]').get_attribute("title")

    # Buy YES: the cost and the payout before sending.
    assert page.locator("#ticket-buy").inner_text() == "Buy YES"
    assert page.locator("#ticket-sell").inner_text() == "Buy NO"
    page.fill("#ticket-price", "0.36")
    page.fill("#ticket-size", "1000")
    assert page.locator("#ticket-estimate").inner_text() == (
        "Cost 360.00 USDC · pays 1,000.00 USDC if YES"
    )
    assert page.locator("#ticket-submit").inner_text() == "Buy 1,000 YES @ 0.360"

    # Buy NO is a YES sell at 1 − price, said in one line.
    page.click("#ticket-sell")
    assert page.locator("#ticket-price-label").inner_text() == "NO price"
    page.fill("#ticket-price", "0.55")
    page.fill("#ticket-size", "3")
    assert "Buying NO at 0.550 is selling YES at 1 − 0.550 = 0.450" in (
        page.locator("#ticket-explain").inner_text()
    )
    assert page.locator("#ticket-estimate").inner_text() == "Cost 1.65 USDC · pays 3.00 USDC if NO"
    page.click("#ticket-submit")
    message = page.locator("#ticket-message")
    eventually(lambda: re.search(r"ord_\d+ open", message.inner_text()))
    order_id = message.inner_text().split()[0]
    sent = user.request("GET", "/orders?status=open").json()["orders"]
    assert [(o["order_id"], o["side"], o["price"], o["size"]) for o in sent] == [
        (order_id, "sell", 0.45, 3)
    ]
    # The book marks it as the user's; the open orders list it as the NO buy it was.
    mine = page.locator('#book-asks .lvl.mine[data-price="0.450"]')
    mine.wait_for()
    assert mine.get_attribute("data-mine") == "3"
    assert page.locator("#book .lvl.mine").count() == 1  # others' levels are not marked
    order_row = page.locator(f'#my-orders tr.order-row[data-order="{order_id}"]')
    assert "BUY NO" in order_row.inner_text() and "0.550" in order_row.inner_text()
    # Its place in the queue: the 7 contracts that came first at that price.
    assert order_row.locator("td.ahead").inner_text() == "7"

    # A level clicked puts its price on the ticket in the ticket's terms (here NO).
    page.locator('#book-bids .lvl[data-price="0.300"]').click()
    assert page.locator("#ticket-price").input_value() == "0.700"

    # A YES buy that fills: the position appears on the page.
    assert page.locator("#my-position").get_attribute("data-size") == "0"
    page.click("#ticket-buy")
    page.fill("#ticket-price", "0.36")
    page.fill("#ticket-size", "10")
    page.click("#ticket-submit")
    eventually(lambda: "filled 10" in message.inner_text())
    page.locator('#my-position[data-size="10"]').wait_for()
    held = page.locator("#my-position").inner_text()
    assert "10 YES" in held and "pays 10.00 USDC if YES" in held and "0.360" in held
    shot(page, "market-yes-no")

    # More than the account can back: the ticket says what it needs and what is available.
    page.fill("#ticket-price", "0.99")
    page.fill("#ticket-size", "20000")
    page.click("#ticket-submit")
    eventually(lambda: "INSUFFICIENT_BALANCE" in message.inner_text())
    available = user.request("GET", "/account").json()["balance"]["available"]
    assert message.inner_text() == (  # 20,000 at 0.99, and the taker fee (20 bps) on it
        "INSUFFICIENT_BALANCE: this order needs 19,839.60 USDC of collateral; "
        f"{money_text(available)} USDC is available."
    )

    # An index market keeps price framing: buy and sell at a price, collateral shown.
    index_id = unique("index")
    admin.market(index_id, "index", floor=0, cap=100, tick_size=0.1)
    page.goto(f"/#/market/{index_id}")
    page.locator("#ticket-submit").wait_for()
    assert page.locator("#ticket-buy").inner_text() == "Buy"
    assert page.locator("#ticket-sell").inner_text() == "Sell"
    assert page.locator("#t-chance").count() == 0 and page.locator("#ticket-explain").count() == 0
    page.fill("#ticket-price", "52.3")
    page.fill("#ticket-size", "2")
    assert "Collateral ≈ 104.60 USDC" in page.locator("#ticket-estimate").inner_text()
    assert errors == []
    user.close()


def test_a_market_that_stops_trading_refuses_orders_and_settles_into_history(
    server: LiveServer, admin: Admin, context: Any
) -> None:
    market_id = unique("closing")
    busy_market(admin, market_id)
    user = signed_in(server, context)
    bought = user.request(
        "POST",
        "/orders",
        {"market_id": market_id, "side": "buy", "price": "0.36", "size": 5, "time_in_force": "IOC"},
    )
    assert bought.status_code == 201 and bought.json()["filled_size"] == 5, bought.text

    page = context.new_page()
    errors = watch_errors(page)
    page.goto(f"/#/market/{market_id}")
    page.locator("#feed-state.on").wait_for()
    assert page.locator("#ticket-submit").is_enabled()
    assert page.locator("#ticket-closed").inner_text() == ""

    # Closed while the page is open: the header and the ticket follow over the stream.
    admin.post(f"/markets/{market_id}/close")
    page.locator("#market-status .s-closed").wait_for()
    page.locator("#ticket-submit:disabled").wait_for()
    assert "awaits its settlement proposal" in page.locator("#ticket-closed").inner_text()
    assert page.locator("#ticket-price").is_disabled()

    # Proposed: resolving, and the settlement box says when the dispute window ends.
    proposal = admin.post(
        f"/markets/{market_id}/settlement/propose", {"value": 1, "evidence": {"source": "test"}}
    )
    ends = proposal["current"]["dispute_ends_at"].replace("T", " ")[:19]
    page.locator("#market-status .s-resolving").wait_for()
    page.locator("#dispute-ends").wait_for()
    assert page.locator("#dispute-ends").inner_text() == f"dispute window ends {ends} UTC"
    assert page.locator("#settlement-value").inner_text() == "1.000 (YES)"
    reason = page.locator("#ticket-closed").inner_text()
    assert "proposed" in reason and f"the dispute window ends {ends} UTC" in reason
    assert page.locator("#ticket-submit").is_disabled()
    # A fresh load shows the same status (from REST).
    page.reload()
    page.locator("#market-status .s-resolving").wait_for()
    page.locator("#ticket-submit:disabled").wait_for()
    shot(page, "market-resolving")

    # Finalized once the window has passed: settled, and the position is history.
    def finalize() -> bool:
        response = admin.http.post(f"{admin.api}/admin/markets/{market_id}/settlement/finalize")
        return response.status_code < 300

    eventually(finalize, timeout=30)
    page.locator("#market-status .s-settled").wait_for()
    assert "Settled at 1.000 (YES)" in page.locator("#ticket-closed").inner_text()
    assert "paid out" in page.locator("#dispute-ends").inner_text()

    (settled,) = user.request("GET", f"/settlements?market_id={market_id}").json()["settlements"]
    assert (settled["size"], settled["payout"]) == (5, 5.0)
    page.goto("/#/account")
    row = page.locator(f'#settled tr.settled-row[data-market="{market_id}"]')
    row.wait_for()
    cells = [cell.strip() for cell in row.locator("td").all_inner_texts()]
    assert cells[1:] == [
        market_id,
        "5 YES",
        "1.000 (YES)",
        money_text(settled["cost_basis"]),
        "5.00",
        money_text(settled["settlement_pnl"]),
        money_text(settled["realized_pnl"]),
    ]
    assert page.locator(f'#positions tr[data-market="{market_id}"]').count() == 0
    shot(page, "account-settled")
    assert errors == []
    user.close()


NUMBERS: list[tuple[str, Any, Any]] = [
    ("price", 0.5, 0.001),
    ("price", 52.3, 0.1),
    ("price", 0.3125, 0.001),  # an average between ticks keeps its digits
    ("price", 40, 1),
    ("price", 0.42, None),
    ("money", 50000, None),
    ("money", 0.004, None),
    ("money", -0.8, None),
    ("money", 1234.5, None),
    ("money", 0, None),
    ("money", 0.1234567, None),
]


def test_the_page_writes_numbers_as_the_command_line_does(server: LiveServer, context: Any) -> None:
    page = context.new_page()
    page.goto("/#/login")
    page.locator("#login-form").wait_for()
    written = page.evaluate(
        """async (cases) => {
            const lib = await import("/dashboard/static/lib.js");
            const shown = cases.map(([kind, value, tick]) =>
                kind === "price" ? lib.fmtPrice(value, tick) : lib.fmtMoney(value));
            return {shown, chance: [lib.fmtChance(0.625, 0.001), lib.fmtChance(0.62, 0.01),
                                    lib.fmtYesNo(0.62, 0.001), lib.noPrice(0.62)]};
        }""",
        NUMBERS,
    )
    expected = [
        price_text(Decimal(str(value)), None if tick is None else Decimal(str(tick)))
        if kind == "price"
        else money_text(Decimal(str(value)))
        for kind, value, tick in NUMBERS
    ]
    assert written["shown"] == expected
    assert expected[:3] == ["0.500", "52.3", "0.3125"]
    assert expected[5:8] == ["50,000.00", "0.004", "-0.80"]
    python = [
        chance_text(Decimal("0.625"), Decimal("0.001")),
        chance_text(Decimal("0.62"), Decimal("0.01")),
        yes_no_text(Decimal("0.62"), Decimal("0.001")),
    ]
    assert written["chance"] == [*python, 0.38]
    assert python == ["62.5%", "62%", "YES 62.0% / NO 38.0%"]


def test_the_markets_list_finds_markets_by_category_series_event_and_tag(
    server: LiveServer, admin: Admin, context: Any
) -> None:
    week, tag = unique("wk"), unique("canals")
    suez, port = unique("suez"), unique("port")
    admin.market(
        suez,
        name=f"Suez open ({suez})",
        category=f"Chokepoints {week}",
        tags=[tag],
        series={"id": f"suez-weekly-{week}", "title": f"Suez weekly availability {week}"},
        event={"id": f"week-{week}", "title": f"Week of {week}"},
    )
    admin.market(port, name=f"Shanghai congestion ({port})", kind="index", category=f"Ports {week}")
    page = context.new_page()
    errors = watch_errors(page)
    page.goto("/")
    rows = page.locator("tr.market-row")
    page.locator(f'tr.market-row[data-market="{suez}"]').wait_for()
    # Each market says where it belongs: category · series · event.
    place = page.locator(f'tr.market-row[data-market="{suez}"] .place')
    assert place.inner_text() == (
        f"Chokepoints {week} · Suez weekly availability {week} · Week of {week}"
    )

    def listed() -> set[str]:
        return set(rows.evaluate_all("rows => rows.map(r => r.dataset.market)"))

    # The category choice offers the categories the listed markets carry.
    page.select_option("#markets-category", f"Ports {week}")
    eventually(lambda: listed() == {port})
    page.select_option("#markets-category", "")
    # The filter box searches the series, the event and the tags as well as the names.
    for words in (f"suez weekly availability {week}", f"week of {week}", tag.upper()):
        page.fill("#markets-filter", words)
        eventually(lambda: listed() == {suez})
    assert errors == []


def test_the_account_page_sums_fees_and_rebates_by_month(
    server: LiveServer, admin: Admin, context: Any
) -> None:
    market_id = unique("fees")
    busy_market(admin, market_id)  # maker fee -5 bps (a rebate), taker fee 20 bps
    user = signed_in(server, context)
    # Taking from the asks pays the taker fee; a bid another account then sells into earns the
    # maker rebate.
    take = {"market_id": market_id, "side": "buy", "price": "0.39", "size": 100}
    assert user.request("POST", "/orders", {**take, "time_in_force": "IOC"}).status_code == 201
    rest = {"market_id": market_id, "side": "buy", "price": "0.31", "size": 50}  # the best bid
    assert user.request("POST", "/orders", rest).status_code == 201
    seller = admin.account(unique("seller"), 1_000)
    hit = {"market_id": market_id, "side": "sell", "price": "0.31", "size": 50}
    assert seller.post("/orders", {**hit, "time_in_force": "IOC"}).status_code == 201
    seller.close()

    page = context.new_page()
    errors = watch_errors(page)
    page.goto("/#/account")
    month = page.locator("#fees tr.fee-row").first
    month.wait_for()
    cells = month.locator("td").all_inner_texts()
    summary = user.request("GET", "/account").json()["fees"]["periods"][0]
    assert cells == [
        summary["period_start"][:7],
        money_text(Decimal(str(summary["fees_paid"]))),
        money_text(Decimal(str(summary["rebates_earned"]))),
        money_text(Decimal(str(summary["net_fees"]))),
        f"{summary['fee_count']} / {summary['rebate_count']}",
    ]
    assert summary["rebates_earned"] > 0 and summary["rebate_count"] == 1
    assert summary["fees_paid"] > 0 and summary["fee_count"] >= 1
    assert errors == []
    user.close()
