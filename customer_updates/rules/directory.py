"""An in-memory index of the customers one unit of work has loaded (and locked).

The rules look customers up here instead of in the database, so they stay pure; the service fills it
with every customer a batch of commands can touch, then replaces states as items are applied, so a
later item of the same batch sees the effects (and merges) of an earlier one.
"""

from __future__ import annotations

from collections import defaultdict

from customer_updates.rules.state import IDENTIFIERS, CustomerState

MAX_CHAIN = 64  # merge chains are short; a longer one means corrupted data, not a long history


class MergeCycleError(RuntimeError):
    pass


class Directory:
    def __init__(self, states: list[CustomerState] | None = None) -> None:
        self.by_id: dict[int, CustomerState] = {}
        self._active: dict[tuple[str, str], int] = {}
        self._any: dict[tuple[str, str], set[int]] = defaultdict(set)
        for state in states or []:
            self.put(state)

    def put(self, state: CustomerState) -> None:
        old = self.by_id.get(state.user_id)
        if old is not None:
            for name in IDENTIFIERS:
                value = old.identifier(name)
                if value and self._active.get((name, value)) == state.user_id:
                    del self._active[(name, value)]
        self.by_id[state.user_id] = state
        for name in IDENTIFIERS:
            value = state.identifier(name)
            if value:
                self._any[(name, value)].add(state.user_id)
                if state.active:
                    self._active[(name, value)] = state.user_id

    def active_holder(self, name: str, value: str) -> CustomerState | None:
        user_id = self._active.get((name, value))
        return self.by_id[user_id] if user_id is not None else None

    def survivor(self, state: CustomerState) -> CustomerState:
        """The end of a merge chain: the active customer a merged victim now lives in."""
        seen = {state.user_id}
        while not state.active and state.merged_into is not None:
            nxt = self.by_id.get(state.merged_into)
            if nxt is None:
                break
            if nxt.user_id in seen or len(seen) > MAX_CHAIN:
                raise MergeCycleError(f"merge cycle at user {state.user_id}")
            seen.add(nxt.user_id)
            state = nxt
        return state

    def find(self, name: str, value: str) -> tuple[CustomerState | None, bool]:
        """The customer an identifier leads to, and whether it was reached through a merge chain."""
        if name == "id":
            state = self.by_id.get(int(value))
        else:
            state = self.active_holder(name, value)
            if state is None:
                # Victims keep their identifiers; the newest merge is the one to follow.
                victims = sorted(self._any.get((name, value), ()), reverse=True)
                state = self.by_id[victims[0]] if victims else None
        if state is None:
            return None, False
        if state.active:
            return state, False
        end = self.survivor(state)
        return (end, True) if end.active else (None, False)
