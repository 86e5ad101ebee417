"""Masked language modelling inputs: which tokens to predict and what the model sees instead.

- Candidates are the real text tokens (never [CLS], [SEP] or [PAD]). With whole-word masking the
  candidates are whole words (all pieces of a word are masked together).
- The number of predictions is k = min(max_predictions, max(1, floor(n * masked_lm_prob + 0.5))),
  n = number of candidate tokens (0 when there is none).
- Forced groups (from alignment-guided masking) are taken first, in their order; then random
  groups, skipping protected positions, any group that would overflow k, and groups already taken.
- Each chosen position, independently: 80% -> [MASK], 10% -> unchanged, 10% -> a random token
  (drawn uniformly from the ordinary vocabulary, never a bracketed special token).
- Outputs are sorted by position and padded with 0 to max_predictions; weights are 1.0 on real
  predictions and 0.0 on padding.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass
class MaskedLmResult:
    input_ids: np.ndarray  # [T] after masking
    positions: np.ndarray  # [P] int64
    label_ids: np.ndarray  # [P] int64: the original ids
    weights: np.ndarray  # [P] float32
    num_predictions: int
    replacements: tuple  # per prediction: "mask", "keep" or "random"


class MaskedLmSampler:
    """Draws masked LM predictions for an EncodedText; see the module docstring."""

    def __init__(
        self, tokenizer, max_predictions=10, masked_lm_prob=0.15, whole_word=False, mask_prob=0.8, random_prob=0.1
    ):
        if max_predictions < 0:
            raise ValueError(f"max_predictions must be >= 0, got {max_predictions}")
        if not 0.0 <= masked_lm_prob <= 1.0:
            raise ValueError(f"masked_lm_prob must be in [0, 1], got {masked_lm_prob}")
        if mask_prob < 0 or random_prob < 0 or mask_prob + random_prob > 1.0:
            raise ValueError(
                f"need mask_prob, random_prob >= 0 and mask_prob + random_prob <= 1, got {mask_prob}, {random_prob}"
            )
        self.mask_id = tokenizer.mask_id
        self.random_token_ids = np.asarray(tokenizer.random_token_ids, np.int64)
        self.max_predictions = int(max_predictions)
        self.masked_lm_prob = float(masked_lm_prob)
        self.whole_word = bool(whole_word)
        self.mask_prob = float(mask_prob)
        self.random_prob = float(random_prob)

    def num_to_predict(self, num_candidates):
        if num_candidates <= 0 or self.max_predictions == 0:
            return 0
        return int(min(self.max_predictions, max(1, np.floor(num_candidates * self.masked_lm_prob + 0.5))))

    def groups(self, encoded):
        """Candidate groups: lists of token positions (one per token, or one per word)."""
        positions = np.flatnonzero(encoded.word_ids >= 0)
        if not self.whole_word:
            return [[int(p)] for p in positions]
        groups, last = [], None
        for p in positions:
            w = int(encoded.word_ids[p])
            if w != last:
                groups.append([])
                last = w
            groups[-1].append(int(p))
        return groups

    def sample(self, encoded, rng, forced_groups=(), protected=frozenset()):
        """Returns a MaskedLmResult for `encoded` (an EncodedText)."""
        groups = self.groups(encoded)
        candidates = int(np.sum(encoded.word_ids >= 0))
        k = self.num_to_predict(candidates)
        chosen = []
        taken = set()
        for group in forced_groups:
            group = [int(p) for p in group if int(p) not in taken]
            if group and len(chosen) + len(group) <= k:
                chosen.extend(group)
                taken.update(group)
        for g in rng.permutation(len(groups)) if groups else ():
            if len(chosen) >= k:
                break
            group = groups[int(g)]
            if any(p in taken or p in protected for p in group):
                continue
            if len(chosen) + len(group) > k:
                continue
            chosen.extend(group)
            taken.update(group)
        chosen.sort()

        input_ids = encoded.input_ids.copy()
        labels = [int(encoded.input_ids[p]) for p in chosen]
        replacements = []
        for p in chosen:
            u = rng.random()
            if u < self.mask_prob:
                input_ids[p] = self.mask_id
                replacements.append("mask")
            elif u < self.mask_prob + self.random_prob:
                input_ids[p] = int(self.random_token_ids[rng.integers(len(self.random_token_ids))])
                replacements.append("random")
            else:
                replacements.append("keep")
        size = self.max_predictions
        positions = np.zeros(size, np.int64)
        label_ids = np.zeros(size, np.int64)
        weights = np.zeros(size, np.float32)
        n = len(chosen)
        positions[:n] = chosen
        label_ids[:n] = labels
        weights[:n] = 1.0
        return MaskedLmResult(
            input_ids=input_ids,
            positions=positions,
            label_ids=label_ids,
            weights=weights,
            num_predictions=n,
            replacements=tuple(replacements),
        )
