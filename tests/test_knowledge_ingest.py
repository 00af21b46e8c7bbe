"""``chatbot ingest``: adding, updating, removing, reporting unreadable files, listing; and a reply that
cites its source, end to end through the terminal bot."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from core.sqlite_store import SQLiteStore
from core.store import KnowledgeStore
from core.tokens import TokenCounter
from features.knowledge.embeddings import Embedder
from features.knowledge.ingest import Ingestor
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support.cli import run_chatbot
from tests.support.openai_clients import client_for, close_clients  # noqa: F401 (autouse)
from tests.test_knowledge_chunking import make_pdf

ORBIT_DOCS = Path(__file__).resolve().parent.parent / "bots" / "data" / "orbit" / "docs"


def docs_copy(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    shutil.copytree(ORBIT_DOCS, docs)
    (docs / "legal").mkdir()
    (docs / "legal" / "sla.pdf").write_bytes(make_pdf([["Orbit SLA", "Business gets 99.9% uptime."]]))
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 truncated nonsense")
    (docs / "logo.png").write_bytes(b"\x89PNG")  # not a document type: skipped silently in folders
    return docs


async def test_ingest_update_remove_and_list_through_the_cli(fake_model: FakeOpenAI, tmp_path: Path) -> None:
    docs = docs_copy(tmp_path)
    env = {"OPENAI_BASE_URL": fake_model.base_url, "OPENAI_API_KEY": "sk-local", "CHATBOT_MODEL": "gpt-4"}

    code, out, err = await run_chatbot(["ingest", "--bot", "orbit", str(docs)], b"", tmp_path, env)
    assert code == 1, err  # something failed: the exit status says so, the rest is ingested
    assert "orbit: 8 added, 0 updated, 0 unchanged, 0 removed, 1 failed" in out
    assert "failed     docs/broken.pdf: not a readable PDF" in out
    assert out.strip().endswith("not ingested: docs/broken.pdf")
    assert "added      legal/sla.pdf (1 passages)" in out

    (docs / "broken.pdf").unlink()
    (docs / "integrations.md").unlink()
    pricing = docs / "pricing.md"
    pricing.write_text(pricing.read_text().replace("$12 per user", "$13 per user"))
    (docs / "status.md").write_text("# Status page\n\nSee status.orbit-app.com for incidents.\n")
    code, out, err = await run_chatbot(["ingest", "--bot", "orbit", str(docs)], b"", tmp_path, env)
    assert code == 0, err
    assert "orbit: 1 added, 1 updated, 6 unchanged, 1 removed, 0 failed" in out
    assert "updated    pricing.md" in out and "removed    integrations.md" in out

    code, out, err = await run_chatbot(["ingest", "--bot", "orbit", "--list"], b"", tmp_path, {})
    assert code == 0, err
    listed = [line.split()[0] for line in out.strip().splitlines()[:-1]]
    assert listed == [
        "account-security.md",
        "billing-faq.md",
        "features.md",
        "getting-started.html",
        "legal/sla.pdf",
        "pricing.md",
        "status.md",
        "troubleshooting.md",
    ]
    assert out.strip().splitlines()[-1].startswith("orbit: 8 documents, ")
    with sqlite3.connect(tmp_path / "data" / "chatbot.db") as db:
        texts = " ".join(row[0] for row in db.execute("SELECT text FROM knowledge_chunks WHERE bot='orbit'"))
        hits = db.execute("SELECT count(*) FROM knowledge_fts WHERE knowledge_fts MATCH 'zapier'").fetchone()
    assert "$13 per user" in texts and "$12 per user" not in texts
    assert hits == (0,), "removed passages leave the keyword index too"


async def test_a_reply_cites_its_source_through_the_terminal_bot(
    fake_model: FakeOpenAI, tmp_path: Path
) -> None:
    env = {"OPENAI_BASE_URL": fake_model.base_url, "OPENAI_API_KEY": "sk-local", "CHATBOT_MODEL": "gpt-4"}
    code, out, err = await run_chatbot(["ingest", "--bot", "orbit", str(ORBIT_DOCS)], b"", tmp_path, env)
    assert code == 0, err
    assert "orbit: 7 added" in out
    fake_model.queue(
        Reply(text="Pro is $12 per user per month, or $10 billed annually [pricing.md].", chunk_size=7)
    )
    code, out, err = await run_chatbot(
        ["chat", "--bot", "orbit"], b"How much does the Pro plan cost?\n", tmp_path, env
    )
    assert code == 0, err
    assert out == "Pro is $12 per user per month, or $10 billed annually [pricing.md].\n"
    system = fake_model.last_messages()[0]["content"]
    assert "Cite the source names in brackets" in system
    assert (
        "[pricing.md] Orbit pricing > Pro plan\nThe Pro plan costs $12 per user per month when billed monthly, "
        "or $10 per user per month when billed annually ($120 per user per year)."
    ) in system


async def test_cli_needs_paths_or_list_and_a_known_bot(tmp_path: Path) -> None:
    # default names no knowledge folder in the bots file (orbit does: it would ingest bots/data/orbit/docs)
    code, _out, err = await run_chatbot(["ingest", "--bot", "default"], b"", tmp_path, {})
    assert code == 2 and "give files or folders to ingest, or --list" in err
    code, _out, _err = await run_chatbot(["ingest", "--bot", "nosuch", "--list"], b"", tmp_path, {})
    assert code == 2


def ingestor(store: KnowledgeStore, fake_model: FakeOpenAI, **overrides: int) -> Ingestor:
    client = client_for(fake_model)
    sizes = {"chunk_tokens": 300, "chunk_overlap": 40, **overrides}
    counter = TokenCounter("text-embedding-3-small", allow_download=False)
    return Ingestor(store, Embedder(client, "fake-embed"), counter, **sizes)


async def test_files_given_one_by_one_and_files_gone_missing(
    fake_model: FakeOpenAI, db_path: Path, tmp_path: Path
) -> None:
    one, two = tmp_path / "one.md", tmp_path / "two.txt"
    one.write_text("# One\n\nFirst document.\n")
    two.write_text("Second document.\n")
    opened = SQLiteStore(db_path)
    await opened.open()
    store = opened.knowledge
    try:
        report = await ingestor(store, fake_model).ingest("orbit", [one, two, tmp_path / "never.md"])
        assert report.added == ["one.md", "two.txt"]
        assert [(Path(name).name, reason) for name, reason in report.failed] == [
            ("never.md", "no such file or folder")
        ]
        two.unlink()
        report = await ingestor(store, fake_model).ingest("orbit", [two])
        assert report.removed == ["two.txt"] and not report.failed
        assert [doc.source for doc in await store.documents("orbit")] == ["one.md"]
        assert await store.documents("default") == []
    finally:
        await opened.close()


async def test_new_chunk_sizes_re_embed_unchanged_files(fake_model: FakeOpenAI, db_path: Path) -> None:
    opened = SQLiteStore(db_path)
    await opened.open()
    store = opened.knowledge
    try:
        first = await ingestor(store, fake_model).ingest("orbit", [ORBIT_DOCS])
        again = await ingestor(store, fake_model).ingest("orbit", [ORBIT_DOCS])
        resized = await ingestor(store, fake_model, chunk_tokens=60, chunk_overlap=10).ingest(
            "orbit", [ORBIT_DOCS]
        )
        assert len(first.added) == len(again.unchanged) == len(resized.updated) == 7
        assert resized.chunks > first.chunks
        assert await store.chunk_count("orbit") == resized.chunks
    finally:
        await opened.close()


async def test_ingest_without_a_path_reads_the_knowledge_folder_the_bots_file_names(
    fake_model: FakeOpenAI, tmp_path: Path
) -> None:
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "faq.md").write_text("# FAQ\n\nThe office opens at 9.\n", encoding="utf-8")
    (tmp_path / "bots.toml").write_text(
        "[bots.desk]\nsystem_prompt = 'x'\nknowledge = 'kb'\n", encoding="utf-8"
    )
    env = {"OPENAI_BASE_URL": fake_model.base_url, "OPENAI_API_KEY": "sk-local", "CHATBOT_MODEL": "gpt-4"}
    code, out, err = await run_chatbot(["ingest", "--bot", "desk"], b"", tmp_path, env)
    assert code == 0, err
    assert "desk: 1 added" in out
