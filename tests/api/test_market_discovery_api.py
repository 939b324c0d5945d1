"""Market discovery over real HTTP: category, tags, series and event on the market object,
set by the admin API (create and PATCH) and the admin CLI, filtered on ``GET /v1/markets``,
listed by ``GET /v1/series`` and ``GET /v1/events``; the sandbox catalogue fills them in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.live_server import NO_LIMITS, LiveServer, live_server
from tests.signed_client import Admin

SUEZ_WEEKLY = {"id": "suez-weekly", "title": "Suez Canal weekly availability"}
WEEK_49 = {"id": "chokepoints-w49", "title": "Chokepoint availability - Week 49"}


def ids(server: LiveServer, query: str = "") -> list[str]:
    response = httpx.get(f"{server.api}/markets{query}")
    assert response.status_code == 200, response.text
    return [m["id"] for m in response.json()["markets"]]


def listed(admin: Admin) -> None:
    admin.market(
        "suez-w49",
        category="Chokepoints",
        tags=["shipping", "suez", "weekly"],
        series=SUEZ_WEEKLY,
        event=WEEK_49,
        question="Will the Suez Canal be open all week?",
        close_time=4_102_444_800_000,
    )
    admin.market(
        "suez-w50",
        category="Chokepoints",
        tags=["shipping", "suez"],
        series=SUEZ_WEEKLY,
        close_time=4_103_049_600_000,
    )
    admin.market(
        "panama-w49",
        category="chokepoints",
        tags=["shipping", "panama"],
        event=WEEK_49,
        name="Panama Canal availability",
        close_time=4_102_444_800_000,
    )
    admin.market("sgp-idx", "index", tags=["ports", "ship_ping"], close_time=4_200_000_000_000)
    admin.market("plain")


def test_markets_carry_and_filter_by_discovery_fields(server: LiveServer, admin: Admin) -> None:
    listed(admin)
    one = httpx.get(f"{server.api}/markets/suez-w49").json()
    assert one["category"] == "Chokepoints"
    assert one["tags"] == ["shipping", "suez", "weekly"]
    assert one["series"] == SUEZ_WEEKLY and one["event"] == WEEK_49
    plain = httpx.get(f"{server.api}/markets/plain").json()
    assert (plain["category"], plain["tags"], plain["series"], plain["event"]) == (
        None,
        [],
        None,
        None,
    )

    assert ids(server, "?category=CHOKEPOINTS") == ["suez-w49", "suez-w50", "panama-w49"]
    assert ids(server, "?tag=suez") == ["suez-w49", "suez-w50"]
    assert ids(server, "?tag=ship") == []  # a whole tag, not a part of one
    assert ids(server, "?tag=ship_ping") == ["sgp-idx"]
    assert ids(server, "?tag=shipxping") == []  # "_" is a character, not a wildcard
    assert ids(server, "?series=suez-weekly") == ["suez-w49", "suez-w50"]
    assert ids(server, "?event=chokepoints-w49") == ["suez-w49", "panama-w49"]
    assert ids(server, "?q=PANAMA") == ["panama-w49"]  # the name
    assert ids(server, "?q=open%20all%20week") == ["suez-w49"]  # the question
    assert ids(server, "?q=%25") == []  # text, not a pattern
    assert ids(server, "?type=index&tag=ports") == ["sgp-idx"]
    assert ids(server, "?status=open&series=suez-weekly") == ["suez-w49", "suez-w50"]
    assert ids(server, "?status=halted&series=suez-weekly") == []
    assert ids(server, "?close_before=2100-01-02&series=suez-weekly") == ["suez-w49"]
    assert ids(server, "?close_after=2100-01-02T00:00:00Z&category=chokepoints") == ["suez-w50"]
    assert ids(server, "?close_after=2104-01-01") == []
    assert len(ids(server)) == 5

    series = httpx.get(f"{server.api}/series").json()["series"]
    assert series == [{**SUEZ_WEEKLY, "market_ids": ["suez-w49", "suez-w50"]}]
    events = httpx.get(f"{server.api}/events").json()["events"]
    assert events == [{**WEEK_49, "market_ids": ["suez-w49", "panama-w49"]}]

    bad = httpx.get(f"{server.api}/markets?close_before=yesterday")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_REQUEST"


def admin_patch(server: LiveServer, market_id: str, body: Any) -> httpx.Response:
    return httpx.patch(
        f"{server.api}/admin/markets/{market_id}",
        json=body,
        headers={"Authorization": f"Bearer {server.admin_token}"},
    )


def test_admin_sets_changes_and_clears_them(server: LiveServer, admin: Admin) -> None:
    admin.market("m1", question="Q?")
    changed = admin_patch(
        server, "m1", {"category": "Ports", "tags": ["a", "b", "a"], "series": SUEZ_WEEKLY}
    )
    assert changed.status_code == 200, changed.text
    market = changed.json()
    assert (market["category"], market["tags"], market["series"]) == (
        "Ports",
        ["a", "b"],
        SUEZ_WEEKLY,
    )
    assert market["question"] == "Q?"  # left out: kept
    cleared = admin_patch(server, "m1", {"series": None, "tags": [], "name": "Renamed"}).json()
    assert (cleared["series"], cleared["tags"], cleared["name"]) == (None, [], "Renamed")
    assert cleared["category"] == "Ports"
    assert httpx.get(f"{server.api}/series").json()["series"] == []

    for body, field in (
        ({"tags": ["Upper"]}, "tags"),
        ({"tags": ["x"] * 21}, "tags"),
        ({"series": {"id": "Bad Id", "title": "t"}}, "series"),
        ({"event": {"id": "e"}}, "event"),
        ({"category": " padded"}, "category"),
        ({"name": None}, "name"),
        ({"colour": "red"}, "colour"),
    ):
        response = admin_patch(server, "m1", body)
        assert response.status_code == 400, (body, response.text)
        error = response.json()["error"]
        assert error["code"] == "INVALID_REQUEST", body
        assert field in str(error["details"]), (body, error)
    missing = admin_patch(server, "nope", {"category": "x"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "MARKET_NOT_FOUND"
    unauthorized = httpx.patch(f"{server.api}/admin/markets/m1", json={"category": "x"})
    assert unauthorized.status_code == 401


CLI_MARKET = ("--id", "cli-m", "--name", "CLI market", "--type", "binary")
CLI_MARKET += ("--close-time", "2100-01-01T00:00:00Z")


def test_admin_cli_creates_a_described_market(server: LiveServer) -> None:
    data_dir = Path(server.runtime.settings.data_dir)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "ballast_exchange.cli", "admin", "--data-dir"]
        command += [str(data_dir), "--url", server.api.removesuffix("/v1")]
        return subprocess.run(
            [*command, "markets", "create", *CLI_MARKET, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    half = cli("--series", "s1")
    assert half.returncode == 2 and "--series and --series-title go together" in half.stderr
    done = cli(
        "--category",
        "Chokepoints",
        "--tag",
        "suez",
        "--tag",
        "weekly",
        "--series",
        "s1",
        "--series-title",
        "Series one",
        "--event",
        "e1",
        "--event-title",
        "Event one",
    )
    assert done.returncode == 0, done.stderr
    market = httpx.get(f"{server.api}/markets/cli-m").json()
    assert market["category"] == "Chokepoints" and market["tags"] == ["suez", "weekly"]
    assert market["series"] == {"id": "s1", "title": "Series one"}
    assert market["event"] == {"id": "e1", "title": "Event one"}


def test_the_sandbox_catalogue_describes_every_market(tmp_path: Path) -> None:
    settings = {"env": "sandbox", "demo": True, "bot": False, **NO_LIMITS}
    with live_server(tmp_path / "var", **settings) as server:
        markets = httpx.get(f"{server.api}/markets").json()["markets"]
        assert len(markets) == 28
        for m in markets:
            assert m["category"] and m["tags"] and m["series"] and m["event"], m["id"]
            assert "shipping" in m["tags"], m["id"]
        suez = [m for m in markets if m["series"]["id"] == "suez-weekly"]
        assert len(suez) == 2
        assert suez[0]["series"]["title"] == "Suez Canal weekly availability"
        series = httpx.get(f"{server.api}/series").json()["series"]
        assert {s["id"] for s in series} == {m["series"]["id"] for m in markets}
        assert sum(len(s["market_ids"]) for s in series) == 28
        events = httpx.get(f"{server.api}/events").json()["events"]
        week = next(e for e in events if e["id"] == suez[0]["event"]["id"])
        assert len(week["market_ids"]) == 5  # every chokepoint in that week
        chokepoints = ids(server, "?category=chokepoints")
        assert len(chokepoints) == 20
