"""Random ids for requests, traces, spans and answers: unique, not secret.

They come from the process's PRNG, not the OS: a ``getrandom`` syscall per id was a visible
share of a request's cost. Python reseeds the PRNG in every forked child, so workers do not
repeat each other. Secrets (keys, session ids) use :mod:`secrets`, never this module.
"""

from __future__ import annotations

from random import getrandbits


def random_hex(nbytes: int) -> str:
    """``2 * nbytes`` random hex digits."""
    # The same digits as formatting the number zero-padded, at about half the cost.
    return getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()
