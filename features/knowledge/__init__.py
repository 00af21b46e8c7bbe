"""A bot's knowledge base: its own documents, searchable by meaning and by keywords.

readers      files (Markdown, text, HTML, PDF) -> documents made of titled sections
chunking     documents -> passages that follow headings and paragraphs, token-sized, with overlap
embeddings   passages and questions -> unit vectors, from the model server's /v1/embeddings
(store)      passages, vectors and a keyword index: the engine store's ``knowledge`` (core.store.KnowledgeStore)
ingest       a folder -> the store, incrementally (only what changed; what was deleted goes)
retrieval    a question -> the best passages (vector + keyword ranking, above a threshold)
"""
