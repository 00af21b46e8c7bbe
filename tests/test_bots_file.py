"""The bots file: what loads, and every way a bad one is refused, each with the file, the line, the key and
what is wrong (as ``chatbot config check`` and every command's start print it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bots.bot_settings import settings_for as bot_settings_for
from bots.bots_file import PACKAGED, BotsFileError, load_bots, locate
from tests.support.cli import run_chatbot
from tests.support.engines import settings_for

GOOD = """\
[bots.helper]
description = "A helper."
system_prompt = "You are Helper."
models = ["small-model", "big-model"]

[bots.helper.params]
temperature = 1

[bots.helper.modes.pirate]
description = "Talks like a pirate"
system_prompt_file = "prompts/pirate.md"
model = "big-model"

[bots.helper.platforms.telegram]
token_env = "HELPER_TELEGRAM_TOKEN"
admins = ["1001"]
"""


def write(tmp_path: Path, text: str, name: str = "bots.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(BotsFileError) as caught:
        load_bots(path)
    return caught.value.problems


def test_a_good_file_defines_its_bots_with_prompt_files_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "pirate.md").write_text("Arr. You are a pirate.\n", encoding="utf-8")
    config = load_bots(write(tmp_path, GOOD))
    bot = config.get("helper").profile
    assert bot.system_prompt == "You are Helper."
    assert bot.params.temperature == 1.0 and bot.params.max_tokens == 1024  # unset keys keep the defaults
    assert bot.models == ("small-model", "big-model")
    assert bot.admins == frozenset({"telegram:1001"})
    pirate = bot.choosing("pirate", None)
    assert (pirate.system_prompt, pirate.model) == ("Arr. You are a pirate.", "big-model")
    assert (tmp_path / "prompts" / "pirate.md").resolve() in config.sources  # watched for changes too


def test_the_packaged_file_ships_default_and_orbit_as_they_were() -> None:
    config = load_bots(PACKAGED)
    assert set(config.bots) == {"default", "orbit"}
    orbit = config.get("orbit").profile
    assert orbit.system_prompt.startswith("You are Orbit Assist")
    assert (orbit.trim.strategy, orbit.params.temperature, orbit.max_input_chars) == ("summary", 0.3, 8000)
    assert config.get("orbit").data_dir == PACKAGED.parent / "orbit"  # guard rules and eval cases


def test_the_file_is_found_in_the_environment_then_here_then_in_the_package(tmp_path: Path) -> None:
    assert locate({"CHATBOT_BOTS_FILE": "/etc/mine.toml"}, tmp_path) == Path("/etc/mine.toml")
    assert locate({}, tmp_path) == PACKAGED
    local = write(tmp_path, GOOD)
    assert locate({}, tmp_path) == local


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[bots.a]\ndescription = "no prompt"\n', "bots.toml:1: bots.a: give exactly one of system_prompt"),
        (
            "[bots.a]\nsystem_prompt = 'x'\nmax_input_chars = 'many'\n",
            "bots.toml:3: bots.a.max_input_chars: ",
        ),
        ("[bots.a]\nsystem_prompt = 'x'\n\n[bots.a.params]\ntemprature = 1\n", "bots.toml:5: "),
        (
            "[bots.a]\nsystem_prompt_file = 'missing.md'\n",
            "bots.toml:2: bots.a.system_prompt_file: no such file",
        ),
        (
            "[bots.a]\nsystem_prompt = 'x'\n[bots.b]\nsystem_prompt = 'y'\n[bots.a]\n",
            "bots.toml:5: bots.a is ",
        ),
        ("[bots.a]\nsystem_prompt = 'x'\n\n[bots.a.platforms.whatsapp]\n", "bots.toml:4: bots.a.platforms."),
        ("[bots.Bad]\nsystem_prompt = 'x'\n", "bots.toml:1: bots.Bad: names are 1-32 lowercase letters"),
        ("[bots]\n", "bots.toml:1: bots: define at least one bot"),
        ("[bots.a\nsystem_prompt = 'x'\n", "bots.toml:1: "),
    ],
    ids=[
        "missing key",
        "wrong type",
        "unknown key",
        "bad prompt path",
        "duplicate bot name",
        "unknown platform",
        "bad name",
        "no bot",
        "not TOML",
    ],
)
def test_each_problem_names_the_file_the_line_the_key_and_what_is_wrong(
    tmp_path: Path, text: str, expected: str
) -> None:
    found = problems(write(tmp_path, text))
    assert len(found) == 1, found
    assert found[0].startswith(f"{tmp_path}/{expected}"), found[0]


def test_the_messages_say_what_is_wrong_in_words(tmp_path: Path) -> None:
    said = {
        "unknown key": "[bots.a]\nsystem_prompt = 'x'\ntemprature = 1\n",
        "wrong type": "[bots.a]\nsystem_prompt = 'x'\nmax_input_chars = 'many'\n",
        "unknown platform": "[bots.a]\nsystem_prompt = 'x'\n[bots.a.platforms.whatsapp]\n",
        "duplicate": "[bots.a]\nsystem_prompt = 'x'\n[bots.a]\nsystem_prompt = 'y'\n",
    }
    messages = {case: problems(write(tmp_path, text))[0] for case, text in said.items()}
    assert messages["unknown key"].endswith("bots.a.temprature: unknown key 'temprature'")
    assert messages["wrong type"].endswith("bots.a.max_input_chars: Input should be a valid integer")
    assert messages["unknown platform"].endswith(
        "unknown platform 'whatsapp': choose from telegram, slack, discord"
    )
    assert messages["duplicate"].endswith("bots.a is defined twice (bot names must be unique)")


def test_a_literal_secret_is_refused_without_being_repeated(tmp_path: Path) -> None:
    token = "xoxb-123456789012-abcdefghijklmnop"
    text = f"[bots.a]\nsystem_prompt = 'x'\n\n[bots.a.platforms.slack]\ntoken_env = '{token}'\n"
    [problem] = problems(write(tmp_path, text))
    assert problem.startswith(
        f"{tmp_path}/bots.toml:5: bots.a.platforms.slack.token_env: looks like a Slack token"
    )
    assert token not in problem
    pasted = "[bots.a]\nsystem_prompt = 'Use the key sk-proj-abcdefghij0123456789XYZ when asked'\n"
    [problem] = problems(write(tmp_path, pasted))
    assert "bots.toml:2: bots.a.system_prompt: looks like a OpenAI-style key" in problem
    assert "sk-proj" not in problem


def test_a_credential_key_must_hold_a_variable_name(tmp_path: Path) -> None:
    text = "[bots.a]\nsystem_prompt = 'x'\n[bots.a.platforms.telegram]\ntoken_env = 'my token'\n"
    [problem] = problems(write(tmp_path, text))
    assert problem.startswith(
        f"{tmp_path}/bots.toml:4: bots.a.platforms.telegram.token_env: must be the name"
    )


def test_two_bots_on_one_platform_need_their_own_credentials_and_sessions(tmp_path: Path) -> None:
    text = (
        "[bots.a]\nsystem_prompt = 'x'\n[bots.a.platforms.telegram]\ntoken_env = 'TG'\n"
        "[bots.b]\nsystem_prompt = 'y'\nsession_prefix = 'a'\n[bots.b.platforms.telegram]\ntoken_env = 'TG'\n"
    )
    found = problems(write(tmp_path, text))
    assert any(
        ":9: bots.b.platforms.telegram.token_env: TG is also a's telegram credential" in p for p in found
    )
    assert any(":7: bots.b.session_prefix: 'a' is also a's on telegram" in p for p in found)


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    text = "[bots.a]\nsystem_prompt = 'x'\ncolour = 'red'\n[bots.a.params]\ntemperature = 3\n"
    assert len(problems(write(tmp_path, text))) == 2


async def cli(args: list[str], cwd: Path, stdin: str = "") -> tuple[int, str, str]:
    return await run_chatbot(args, stdin.encode(), cwd, {"CHATBOT_LOG_FILE": ""})


async def test_config_check_prints_the_problems_and_exits_non_zero(tmp_path: Path) -> None:
    bad = write(tmp_path, "[bots.a]\nsystem_prompt = 'x'\ncolour = 'red'\n")
    code, _, err = await cli(["config", "check", str(bad)], tmp_path)
    assert code == 1
    assert f"{bad}:3: bots.a.colour: unknown key 'colour'" in err
    good = write(tmp_path, "[bots.a]\nsystem_prompt = 'x'\n", "good.toml")
    code, out, _ = await cli(["config", "check", str(good)], tmp_path)
    assert code == 0 and "OK, 1 bot: a" in out


async def test_chatbot_bots_lists_the_file_in_effect_and_where_it_is(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "pirate.md").write_text("Arr.", encoding="utf-8")
    write(tmp_path, GOOD)
    code, out, err = await cli(["bots"], tmp_path)
    assert code == 0, err
    assert f"# bots file: {tmp_path / 'bots.toml'}" in out
    assert "helper: A helper. (runs on: telegram) [modes: pirate; models: small-model, big-model]" in out


async def test_a_bad_file_stops_a_command_with_its_problems(tmp_path: Path) -> None:
    write(tmp_path, "[bots.a]\nsystem_prompt = 'x'\ncolour = 'red'\n")
    code, _, err = await cli(["chat", "--bot", "a"], tmp_path, stdin="hi\n")
    assert code == 2
    assert "bots.toml:3: bots.a.colour: unknown key 'colour'" in err


def test_the_environment_wins_over_the_file_and_the_file_over_defaults(tmp_path: Path) -> None:
    text = "[bots.a]\nsystem_prompt = 'x'\n[bots.a.limits]\nmessages_per_minute = 3\nuser_daily_tokens = 7\n"
    entry = load_bots(write(tmp_path, text)).get("a")
    settings = settings_for("http://127.0.0.1:9", tmp_path / "db", CHATBOT_USER_DAILY_TOKENS=99)
    bot = bot_settings_for(entry, settings, environ={})
    assert (bot.rate_limit_per_minute, bot.user_daily_tokens, bot.bot_daily_tokens) == (3, 99, 5_000_000)


def test_default_is_not_a_mode_or_model_name(tmp_path: Path) -> None:
    text = (
        "[bots.a]\nsystem_prompt = 'x'\nmodels = ['default']\n[bots.a.modes.default]\nsystem_prompt = 'y'\n"
    )
    found = problems(write(tmp_path, text))
    assert len(found) == 2 and all("'default' is reserved" in p for p in found)
    assert found[0].startswith(f"{tmp_path}/bots.toml:3: bots.a.models")
