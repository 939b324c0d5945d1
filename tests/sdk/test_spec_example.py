"""The SDK example of the API specification, run as written against a real server.

The only change is ``base_url``, pointing at the test server. The example's own credentials
(``bmkt_live_abc123`` / ``bmkt_secret_xyz789``) are installed on the server for a funded
account, and its market ``suez-apr2025`` is listed, so the example runs verbatim.
"""

from __future__ import annotations

import contextlib
import io
import re

from ballast import BallastClient
from ballast_exchange.access.key_ring import KeyRecord
from tests.live_server import LiveServer
from tests.signed_client import Admin

SPEC_EXAMPLE = """
from ballast import BallastClient

client = BallastClient(
    api_key="bmkt_live_abc123",
    api_secret="bmkt_secret_xyz789",
    base_url=BASE_URL,
)

# Get markets
markets = client.get_markets()

# Place order
order = client.place_order(
    market_id="suez-apr2025",
    side="buy",
    order_type="limit",
    price=0.87,
    size=1000
)

print(f"Order placed: {order.id}")
"""


def test_the_specs_example_runs_verbatim(server: LiveServer, admin: Admin) -> None:
    admin.market("suez-apr2025")
    account = admin.post("/accounts", {"name": "spec example", "deposit": 50_000})
    server.runtime.keys.put(
        KeyRecord(
            "bmkt_live_abc123",
            account["account_id"],
            "bmkt_secret_xyz789",
            frozenset({"read", "trade"}),
        )
    )
    printed = io.StringIO()
    namespace: dict[str, object] = {"BASE_URL": server.api}
    with contextlib.redirect_stdout(printed):
        exec(compile(SPEC_EXAMPLE, "spec-example", "exec"), namespace)
    output = printed.getvalue()
    match = re.fullmatch(r"Order placed: (ord_\w+)\n", output)
    assert match, output
    assert any(m.id == "suez-apr2025" for m in namespace["markets"])  # type: ignore[attr-defined]

    with BallastClient(account["api_key"], account["api_secret"], base_url=server.api) as check:
        order = check.get_order(match.group(1))
        assert (order.market_id, order.side, order.size, str(order.price), order.status) == (
            "suez-apr2025",
            "buy",
            1000,
            "0.87",
            "open",
        )
