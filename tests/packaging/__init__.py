"""The packaging check: build the wheel, install it as a user would, run it from another folder."""
