"""Loopback fakes of every remote party: real servers on 127.0.0.1 driven through the real client libraries."""
