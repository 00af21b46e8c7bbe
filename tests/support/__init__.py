"""Helpers shared by the tests: a virtual clock, the network guard, engine builders."""
