"""`callmemory forget | export | stats | quarantine | migrate` against the real database and Redis the
service uses: configured by URL, or the embedded servers of the data directory."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from callmemory.devtools.datadir import DataDirLock
from callmemory.ops.admin import Progress
from callmemory.settings import Settings
from support.cli import callmemory, cli_env
from support.phone import Phone
from support.serving import (
    CALLER,
    children_of_data_dir,
    embedded_data_dir,
    event,
    free_port,
    serving,
    unconfigured_env,
)

Rows = Callable[..., Any]
BOT = "+14155550000"
OTHER_BOT = "+14155550001"


async def test_forget_erases_every_row_and_key_of_the_caller_and_prints_the_receipt(
    phone: Phone, settings: Settings, sql: Rows, redis: Redis
) -> None:
    await phone.call("My order 4417 never arrived.")

    ran = await callmemory(cli_env(settings), "forget", "--bot", BOT, "--caller", phone.caller)

    assert ran.status == 0, ran.stderr
    receipt = json.loads(ran.stdout)
    assert receipt["deleted"]["calls"] == 1
    assert receipt["deleted"]["turns"] == 3  # greeting, caller, answer
    for table in ("callers", "calls", "turns"):
        assert (await sql(f"SELECT count(*) AS n FROM {table}"))[0].n == 0
    left = [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}:{{*")]
    assert all(k.endswith(":erased") for k in left), left


async def test_export_of_a_caller_contains_what_was_said(
    phone: Phone, settings: Settings, tmp_path: Path
) -> None:
    await phone.call("My order 4417 never arrived.")
    out = tmp_path / "caller.json"

    ran = await callmemory(
        cli_env(settings), "export", "--bot", BOT, "--caller", phone.caller, "-o", str(out)
    )

    assert ran.status == 0, ran.stderr
    exported = json.loads(out.read_text())
    assert exported["caller"]["caller_number"] == phone.caller
    [call] = exported["calls"]
    assert [t["text"] for t in call["turns"]][1:] == [
        "My order 4417 never arrived.",
        "You said: My order 4417 never arrived.",
    ]


async def test_export_of_a_bot_holds_each_of_its_callers_once_and_no_other_bots(
    phone: Phone, settings: Settings
) -> None:
    for caller in ("+14155551001", "+14155551002", "+14155551003"):
        phone.caller = caller
        await phone.call(f"I am {caller}.")
    phone.bot = OTHER_BOT
    await phone.call("Another bot's caller.")

    ran = await callmemory(cli_env(settings), "export", "--bot", BOT)

    assert ran.status == 0, ran.stderr
    exported = json.loads(ran.stdout)
    assert exported["bot_number"] == BOT
    said = [c["calls"][0]["turns"][1]["text"] for c in exported["callers"]]
    assert said == ["I am +14155551001.", "I am +14155551002.", "I am +14155551003."]
    assert "exported 3 caller(s)" in ran.stderr


async def test_stats_count_callers_calls_turns_and_pending_archives(
    phone: Phone, settings: Settings, redis: Redis
) -> None:
    await phone.call("One.", "Two.")
    await phone.call("Three.")
    phone.caller = "+14155551009"
    await phone.call("Four.")
    # An ended call waiting for the archive, not yet due (the app's shutdown flush leaves it be).
    lost = f"seed|{BOT}|{'0' * 64}|lost-call"
    await redis.zadd(f"{settings.redis_prefix}:pending", {lost: 2**52})

    ran = await callmemory(cli_env(settings), "stats")

    assert ran.status == 0, ran.stderr
    assert json.loads(ran.stdout) == {
        "bot_number": None,
        "callers": 2,
        "calls": 3,
        "turns": 11,  # each call's greeting is a turn too
        "pending_archives": 1,
        "quarantined_archives": 0,
    }


async def test_a_bad_number_is_refused_with_exit_status_2_naming_it(settings: Settings) -> None:
    ran = await callmemory(cli_env(settings), "forget", "--bot", BOT, "--caller", "not-a-number")

    assert ran.status == 2
    assert "caller_number" in ran.stderr


async def test_an_unreachable_database_fails_with_exit_status_4(settings: Settings) -> None:
    env = cli_env(settings, DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:1/none")

    ran = await callmemory(env, "stats")

    assert ran.status == 4
    assert "unreachable" in ran.stderr


async def test_exporting_an_unknown_caller_fails_with_exit_status_3(settings: Settings) -> None:
    ran = await callmemory(cli_env(settings), "export", "--bot", BOT, "--caller", "+14155557777")

    assert ran.status == 3
    assert "no caller" in ran.stderr


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_export_progress_bar_is_drawn_on_a_terminal_up_to_the_total() -> None:
    screen = Terminal()
    bar = Progress(3, "exporting callers", screen, width=6)
    for done in (1, 2, 3):
        bar.advance(done)
    bar.finish("exported 3 caller(s)")

    assert "\rexporting callers [######] 3/3\nexported 3 caller(s) in " in screen.getvalue()


def test_off_a_terminal_the_export_progress_is_one_closing_line() -> None:
    log = io.StringIO()
    bar = Progress(3, "exporting callers", log)
    for done in (1, 2, 3):
        bar.advance(done)
    bar.finish("exported 3 caller(s)")

    assert log.getvalue().startswith("exported 3 caller(s) in ")
    assert log.getvalue().count("\n") == 1


async def test_a_failed_caller_export_leaves_no_output_file(settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "nobody.json"

    ran = await callmemory(
        cli_env(settings), "export", "--bot", BOT, "--caller", "+14155557777", "-o", str(out)
    )

    assert ran.status == 3
    assert not out.exists()


def embedded_env(data_dir: Path) -> dict[str, str]:
    """No URL, no secret: the commands find the stores and the hash secret in the data directory."""
    return {**unconfigured_env(), "CALLMEMORY_DATA_DIR": str(data_dir)}


async def test_stats_on_an_unused_embedded_data_directory_starts_migrates_and_stops_its_own_servers() -> None:
    with embedded_data_dir() as root:
        ran = await callmemory(embedded_env(root / "data"), "stats")

        assert ran.status == 0, ran.stderr
        assert json.loads(ran.stdout)["calls"] == 0
        assert "embedded PostgreSQL" in ran.stderr  # status lines stay off stdout, which is the JSON
        assert children_of_data_dir(root / "data") == []
        assert DataDirLock(root / "data").owner() is None


async def test_migrate_without_urls_migrates_the_embedded_database() -> None:
    with embedded_data_dir() as root:
        ran = await callmemory(embedded_env(root / "data"), "migrate")

        assert ran.status == 0, ran.stderr
        assert "migrations applied" in ran.stdout
        assert (root / "data" / "embedded" / "postgres" / "PG_VERSION").exists()


async def test_admin_commands_beside_a_running_serve_use_its_embedded_servers_and_leave_it_serving() -> None:
    with embedded_data_dir() as root, serving(root / "data", free_port()) as (http, _):
        http.post("/webhook/call", json=event("call.ringing", "admin-1"))
        http.post("/webhook/call", json=event("call.speech_recognized", "admin-1", speech="Order 4417?"))
        http.post("/webhook/call", json=event("call.hangup", "admin-1"))
        servers = {p.pid for p in children_of_data_dir(root / "data")}
        env = embedded_env(root / "data")

        stats = await callmemory(env, "stats")
        exported = await callmemory(env, "export", "--bot", BOT, "--caller", CALLER["from"])
        quarantined = await callmemory(env, "quarantine", "list")

        assert stats.status == 0, stats.stderr
        assert json.loads(stats.stdout)["calls"] == 1
        assert exported.status == 0, exported.stderr
        assert "Order 4417?" in [t["text"] for t in json.loads(exported.stdout)["calls"][0]["turns"]]
        assert json.loads(quarantined.stdout) == []
        assert http.get("/readyz").status_code == 200
        assert {p.pid for p in children_of_data_dir(root / "data")} == servers
