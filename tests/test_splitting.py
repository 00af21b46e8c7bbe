from core.splitting import Measure, split_text, utf16_len


def split_all(text: str, limit: int, measure: Measure = len) -> list[str]:
    """Every part of ``text`` cut to ``limit``, in order, as the streaming core cuts a long reply."""
    parts: list[str] = []
    rest = text
    while rest:
        head, rest = split_text(rest, limit, measure)
        parts.append(head)
    return parts


def test_text_that_fits_is_left_whole() -> None:
    assert split_text("short", 10) == ("short", "")


def test_prefers_paragraph_then_sentence_then_space() -> None:
    text = "First paragraph here.\n\nSecond one is longer and goes on."
    assert split_text(text, 40)[0] == "First paragraph here."
    head, _ = split_text("An opening sentence here. Another sentence that runs on and on", 30)
    assert head == "An opening sentence here."
    head, tail = split_text("alpha beta gamma delta epsilon", 17)
    assert head == "alpha beta gamma" and tail == "delta epsilon"


def test_unbroken_text_is_cut_hard_and_loses_nothing() -> None:
    text = "x" * 250
    parts = split_all(text, 100)
    assert [len(p) for p in parts] == [100, 100, 50]
    assert "".join(parts) == text


def test_utf16_measure_counts_emoji_as_two() -> None:
    text = "😀" * 60
    parts = split_all(text, 100, utf16_len)
    assert all(utf16_len(p) <= 100 for p in parts)
    assert "".join(parts) == text
    assert len(parts) == 2


def test_cut_before_a_code_block_when_there_is_text_before_it() -> None:
    text = "Intro text that explains things.\n\n```sh\n" + "echo hi\n" * 20 + "```"
    head, tail = split_text(text, 120)
    assert head == "Intro text that explains things."
    assert tail.startswith("```sh")


def test_huge_code_block_is_closed_and_reopened() -> None:
    text = "```js\n" + "".join(f"let v{i} = {i};\n" for i in range(50)) + "```"
    parts = split_all(text, 150)
    assert len(parts) > 3
    for part in parts:
        assert len(part) <= 150
        assert part.startswith("```js") and part.rstrip().endswith("```")
    lines = [line for p in parts for line in p.splitlines() if line.startswith("let")]
    assert lines == [f"let v{i} = {i};" for i in range(50)]
