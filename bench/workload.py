"""A realistic mix of v1.1 update items, deterministic for a seed.

Per 1,000 updates, about: 780 profile updates (names, custom and extended fields, subscriptions,
tills), 60 with warnings (unknown custom field, bad extended value, unknown till), 50 identifier
fills, 10 merges, 50 bad items (bad lookup email, unknown customer, no identifier, bad channel,
bad date) and 20 duplicates (the same request id and payload sent again, as a retrying producer does).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

from bench.seed import Layout

CITIES = ("Pune", "Delhi", "Chennai", "Kochi", "Indore")
DRINKS = ("flat white", "cortado", "chai", "espresso", "mocha")


@dataclass
class Update:
    request_id: str
    item: dict[str, Any]
    kind: str  # plain | warning | fill | merge | bad | duplicate


class Workload:
    """Draws updates; fills and merges use customers no earlier draw (of this object) used."""

    def __init__(self, layout: Layout, seed: int, run: int = 0) -> None:
        self.layout = layout
        self.rng = random.Random(seed)
        fills = range(layout.full_end, layout.fill_end)
        pairs = range(layout.fill_end, layout.customers - 1, 2)
        # Each run of one invocation takes its own slice, so that a fill or a merge is real each time.
        self._fills = list(fills)[run * 1000:] or list(fills)
        self._pairs = list(pairs)[run * 250:] or list(pairs)
        self._sent: list[Update] = []

    def _profile(self, i: int) -> dict[str, Any]:
        rng = self.rng
        item: dict[str, Any] = {"mobile": self.layout.mobile(i)}
        if rng.random() < 0.7:
            item["firstname"] = f"Name{rng.randrange(10_000)}"
        if rng.random() < 0.5:
            item["lastname"] = f"Family{rng.randrange(10_000)}"
        if rng.random() < 0.6:
            item["custom_fields"] = {"field": [{"name": "favourite_drink", "value": rng.choice(DRINKS)},
                                               {"name": "postcode", "value": f"{rng.randrange(100000, 999999)}"}]}
        if rng.random() < 0.5:
            item["extended_fields"] = {"field": [
                {"name": "city", "value": rng.choice(CITIES)}, {"name": "kids", "value": str(rng.randrange(4))},
                {"name": "dob", "value": f"19{rng.randrange(60, 99)}-0{rng.randrange(1, 9)}-1{rng.randrange(9)}"}]}
        if rng.random() < 0.3:
            item["subscriptions"] = {"subscription": [
                {"priority": rng.choice(("TRANS", "BULK")), "channel": rng.choice(("sms", "email")),
                 "is_subscribed": rng.choice(("0", "1")), "scope": "all"}]}
        if rng.random() < 0.1:
            item["registered_till"] = "store.1"
        return item

    def next(self) -> Update:
        rng = self.rng
        roll = rng.random()
        plain_customer = rng.randrange(self.layout.full_end)
        if roll < 0.02 and self._sent:
            previous = self._sent[rng.randrange(max(0, len(self._sent) - 500), len(self._sent))]
            return Update(previous.request_id, previous.item, "duplicate")
        if roll < 0.08:
            item = self._profile(plain_customer)
            item["custom_fields"] = {"field": {"name": "shoe_size", "value": "7"}}
            item["extended_fields"] = {"field": {"name": "kids", "value": "many"}}
            item["associated_with"] = "no.such.till"
            kind = "warning"
        elif roll < 0.13 and self._fills:
            i = self._fills.pop()
            item, kind = {"mobile": self.layout.mobile(i), "email": f"filled{i}@bench.example"}, "fill"
        elif roll < 0.14 and self._pairs:
            i = self._pairs.pop()
            item, kind = {"mobile": self.layout.mobile(i), "email": self.layout.email(i + 1),
                          "firstname": "Merged"}, "merge"
        elif roll < 0.19:
            item = rng.choice((
                {"email": "not-an-email", "firstname": "X"},
                {"mobile": "919100000000", "firstname": "Nobody"},
                {"firstname": "No identifier"},
                {"mobile": self.layout.mobile(plain_customer),
                 "subscriptions": {"subscription": {"priority": "TRANS", "channel": "fax", "is_subscribed": "1"}}},
                {"mobile": self.layout.mobile(plain_customer), "registered_on": "yesterday"},
            ))
            kind = "bad"
        else:
            item, kind = self._profile(plain_customer), "plain"
        update = Update(uuid.uuid4().hex, item, kind)
        self._sent.append(update)
        return update

    def take(self, count: int) -> list[Update]:
        return [self.next() for _ in range(count)]

    def merges(self, count: int) -> list[Update]:
        """Only merges (for the merge-cost measurement)."""
        out = []
        for _ in range(min(count, len(self._pairs))):
            i = self._pairs.pop()
            out.append(Update(uuid.uuid4().hex, {"mobile": self.layout.mobile(i), "email": self.layout.email(i + 1),
                                                 "firstname": "Merged"}, "merge"))
        return out

    def plain(self, count: int) -> list[Update]:
        return [Update(uuid.uuid4().hex, self._profile(self.rng.randrange(self.layout.full_end)), "plain")
                for _ in range(count)]
