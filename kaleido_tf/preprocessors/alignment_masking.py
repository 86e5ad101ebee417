"""Alignment-guided masking (AGM): masked tokens and masked patches chosen from aligned pairs first.

For one example (a product image with its own text) and its token-patch alignments:

1. Only pairs on kaleido levels 3, 4 and 5 are used; each level has a patch budget of
   `patch_budget` = {3: 1, 4: 2, 5: 3} (the camouflaged, greyed and blanked patches), and the
   token budget is the masked LM count k of the text (15%, at most max_predictions).
2. The pairs are visited in a random order. The aligned word is looked up in the text (every
   occurrence of its pieces that starts and ends on word boundaries; a pair whose word does not
   occur is skipped and counted as unmatched).
3. For each pair one side is chosen at random (token with probability `token_side_prob`):
   - token side: all occurrences of the word are masked for MLM (they count toward k), and the
     aligned patch is protected: it will not be camouflaged, greyed or blanked;
   - patch side: the aligned patch is masked on its level (level 3: it is the camouflaged slot;
     level 4: it is greyed, its id goes to img_grey_lm_ids; level 5: its id goes to
     img_blank_lm_ids), and the word's tokens are protected from MLM masking.
   If the chosen side is not possible (budget spent, already masked, or protected), the other
   side is tried; if neither is possible the pair is skipped.
4. After all pairs, the random strategy fills what is left independently on each side: MLM up
   to k tokens among unprotected tokens, level 3 one slot (drawn among unprotected slots),
   level 4 and 5 up to 2 and 3 ids among unprotected ids (protected ids only when nothing else is
   left).

Without alignments every step reduces to random masking (the paper's "Random" setting).
"""

import dataclasses

PATCH_BUDGET = {3: 1, 4: 2, 5: 3}


@dataclasses.dataclass
class AlignmentMaskingPlan:
    forced_token_groups: list  # lists of token positions, in the order chosen
    protected_positions: set
    forced_patches: dict  # level -> [ids] in the order chosen
    protected_patches: dict  # level -> set(ids)
    stats: dict


def _word_spans(encoded):
    """{word index: [positions]} for the real tokens of an EncodedText."""
    spans = {}
    for p, w in enumerate(encoded.word_ids.tolist()):
        if w >= 0:
            spans.setdefault(w, []).append(p)
    return spans


class AlignmentGuidedMasker:
    """Builds an AlignmentMaskingPlan; see the module docstring."""

    def __init__(self, tokenizer, patch_budget=None, token_side_prob=0.5):
        self.tokenizer = tokenizer
        self.patch_budget = dict(PATCH_BUDGET if patch_budget is None else patch_budget)
        self.token_side_prob = float(token_side_prob)
        self._piece_cache = {}

    def _pieces(self, word):
        key = word.lower() if getattr(self.tokenizer, "lower_case", False) else word
        if key not in self._piece_cache:
            if len(self._piece_cache) > 100_000:
                self._piece_cache.clear()
            self._piece_cache[key] = self.tokenizer.word_piece_ids(word)
        return self._piece_cache[key]

    def find_word(self, encoded, word):
        """Token positions of every occurrence of `word` on word boundaries (may be empty)."""
        pieces = self._pieces(word)
        if not pieces:
            return []
        ids = encoded.input_ids.tolist()
        wids = encoded.word_ids.tolist()
        n, m = len(ids), len(pieces)
        found = []
        for s in range(1, n - m + 1):
            if wids[s] < 0 or ids[s : s + m] != pieces:
                continue
            e = s + m - 1
            if wids[e] < 0:
                continue
            starts_word = wids[s - 1] != wids[s]
            ends_word = e + 1 >= n or wids[e + 1] != wids[e]
            if starts_word and ends_word:
                found.extend(range(s, e + 1))
        return sorted(set(found))

    def plan(self, alignments, encoded, rng, token_budget):
        """Chooses masked and protected tokens and patches from `alignments` (Alignment list)."""
        stats = {"pairs": 0, "token_side": 0, "patch_side": 0, "unmatched": 0, "skipped": 0}
        plan = AlignmentMaskingPlan(
            forced_token_groups=[],
            protected_positions=set(),
            forced_patches={lvl: [] for lvl in self.patch_budget},
            protected_patches={lvl: set() for lvl in self.patch_budget},
            stats=stats,
        )
        pairs = [a for a in alignments if a.level in self.patch_budget]
        if not pairs:
            return plan
        masked_tokens = set()
        used_tokens = 0
        for i in rng.permutation(len(pairs)).tolist():
            pair = pairs[i]
            stats["pairs"] += 1
            positions = self.find_word(encoded, pair.word)
            if not positions:
                stats["unmatched"] += 1
                continue
            level, patch = pair.level, pair.patch
            forced = plan.forced_patches[level]

            token_first = rng.random() < self.token_side_prob
            for side in ("token", "patch") if token_first else ("patch", "token"):
                token_ok = (
                    side == "token"
                    and patch not in forced
                    and not any(p in plan.protected_positions for p in positions)
                    and used_tokens + len([p for p in positions if p not in masked_tokens]) <= token_budget
                    and any(p not in masked_tokens for p in positions)
                )
                if token_ok:
                    group = [p for p in positions if p not in masked_tokens]
                    plan.forced_token_groups.append(group)
                    masked_tokens.update(group)
                    used_tokens += len(group)
                    plan.protected_patches[level].add(patch)
                    stats["token_side"] += 1
                    break
                patch_ok = (
                    side == "patch"
                    and patch not in forced
                    and patch not in plan.protected_patches[level]
                    and len(forced) < self.patch_budget[level]
                    and not any(p in masked_tokens for p in positions)
                )
                if patch_ok:
                    forced.append(patch)
                    plan.protected_positions.update(positions)
                    stats["patch_side"] += 1
                    break
            else:
                stats["skipped"] += 1
        return plan
