"""Counts of a preprocessing pass: nested counters that the steps return and the pass adds up."""

import collections


class Tally(collections.defaultdict):
    """{group: Counter}; `tally["images"]["seen"] += 1`."""

    def __init__(self):
        super().__init__(collections.Counter)

    def merge(self, other):
        """Adds `other`'s counts in place (keys with a zero count are kept); returns self."""
        for group, counter in other.items():
            self[group].update(counter)
        return self

    def plain(self):
        """{group: {key: count}} with sorted keys."""
        return {k: dict(sorted(v.items())) for k, v in sorted(self.items())}


def add_counts(total, part):
    """Adds the numbers of nested dict `part` into `total` (in place)."""
    for key, value in part.items():
        if isinstance(value, dict):
            add_counts(total.setdefault(key, {}), value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value
    return total
