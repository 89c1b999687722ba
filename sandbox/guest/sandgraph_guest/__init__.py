"""Guest-side logic of sandgraph's Python sandbox.

Everything here is plain Python with no dependency on componentize-py's generated
bindings, so it can be unit-tested on the host's CPython (see ../test_guest_logic.py).
``app.py`` only adapts these functions to the WIT types.
"""
