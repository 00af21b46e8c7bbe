"""Photos, voice notes, audio and documents sent with a message: read into the turn (issue 15).

settings.py       the keys: caps, image detail, the transcription server, the documents' budget share
images.py         decoding, size checks and downscaling with Pillow, to what the model uses
documents.py      which files are read as documents, and their text (the knowledge base's readers)
transcription.py  voice notes and audio through an OpenAI-compatible ``/v1/audio/transcriptions``
reader.py         :class:`MediaReader`, the engine's :class:`core.attachments.AttachmentReader`
install.py        plugs the reader into the engine
"""
