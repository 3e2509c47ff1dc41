"""Proof of work for the public report form, in place of a third-party captcha.

The number's page carries a challenge the server signed: when it was issued, a random part,
the difficulty and the number it is for. Before sending, the browser finds an answer whose
SHA-256 with the challenge starts with `bits` zero bits (static/app.js), about 2**bits
hashes; checking it costs one. A challenge is good for CHALLENGE_LIFETIME and once: each
process remembers the challenges spent, so a replica takes each at most once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Final

CHALLENGE_LIFETIME: Final = 30 * 60.0
"""Seconds a challenge may be answered in: the time to read a page and fill a form."""
MAX_ANSWER_LENGTH: Final = 20
MAX_SPENT: Final = 1_000_000
"""Spent challenges remembered at most (about 150 MB at worst); the oldest go first. Each
took 2**bits hashes to spend, and reports are limited per network besides."""


class ChallengeFailed(Exception):
    """The form's proof of work is missing, wrong, expired, or spent already."""


class Challenges:
    """Issue and check the report form's challenges."""

    def __init__(self, secret: bytes, bits: int, clock: Callable[[], float] = time.time) -> None:
        self.bits = bits
        self._secret = secret
        self._clock = clock
        self._spent: dict[str, float] = {}  # challenge -> when it expires, oldest first

    def issue(self, number: int) -> str:
        """A fresh challenge for a report on `number`."""
        body = f"{int(self._clock())}.{secrets.token_hex(8)}.{self.bits}"
        return f"{body}.{self._sign(number, body)}"

    def check(self, number: int, challenge: str, answer: str) -> None:
        """Spend the challenge if `answer` solves it for `number`; else raise ChallengeFailed."""
        parts = challenge.split(".")
        if len(parts) != 4 or not parts[0].isdigit() or not parts[2].isdigit():
            raise ChallengeFailed("malformed")
        issued, _random, bits, signature = parts
        body = challenge.rpartition(".")[0]
        if not hmac.compare_digest(signature, self._sign(number, body)):
            raise ChallengeFailed("not ours, or for another number")
        now = self._clock()
        expires = int(issued) + CHALLENGE_LIFETIME
        if now > expires:
            raise ChallengeFailed("expired")
        if len(answer) > MAX_ANSWER_LENGTH or not solves(challenge, answer, int(bits)):
            raise ChallengeFailed("wrong answer")
        self._forget_expired(now)
        if challenge in self._spent:
            raise ChallengeFailed("spent")
        self._spent[challenge] = expires
        if len(self._spent) > MAX_SPENT:
            del self._spent[next(iter(self._spent))]

    def _sign(self, number: int, body: str) -> str:
        message = f"report-challenge:{number}:{body}".encode("ascii")
        return hmac.digest(self._secret, message, hashlib.sha256)[:16].hex()

    def _forget_expired(self, now: float) -> None:
        while self._spent:
            oldest = next(iter(self._spent))
            if self._spent[oldest] >= now:
                return
            del self._spent[oldest]


def solves(challenge: str, answer: str, bits: int) -> bool:
    """Whether SHA-256("challenge:answer") starts with `bits` zero bits."""
    digest = hashlib.sha256(f"{challenge}:{answer}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest, "big") >> (256 - bits) == 0


def solve(challenge: str) -> str:
    """An answer to a challenge, as the page's script finds it (for tests and clients)."""
    bits = int(challenge.split(".")[2])
    answer = 0
    while not solves(challenge, str(answer), bits):
        answer += 1
    return str(answer)
