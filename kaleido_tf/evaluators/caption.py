"""Caption metrics: BLEU-4, METEOR, ROUGE-L and CIDEr with the MS-COCO caption evaluation code (pycocoevalcap).

Computed as the captioning literature computes them: every caption (hypothesis and references) is first
tokenised with the Stanford PTB tokenizer (lower-cased, punctuation removed); BLEU is corpus-level (n-gram
counts and lengths summed over the corpus, brevity penalty against the closest reference length); METEOR 1.5
aggregates its statistics over the corpus; ROUGE-L and CIDEr (CIDEr-D, document frequencies from the
references of the evaluated corpus) are averaged over the images. SPICE is not computed.

Scores are reported x 100, as papers report them: a perfect corpus scores 100 on BLEU, METEOR and ROUGE-L;
CIDEr-D (natively up to 10) then reaches up to 1000.

The PTB tokenizer and METEOR run on Java (`java` on the PATH). One METEOR process is started per Python
process, on first use, and reused (starting it takes a few seconds).
"""

import contextlib
import io
import os
import shutil
import subprocess
import tempfile
import threading

METRICS = ("bleu_4", "meteor", "rouge_l", "cider")
ALL_METRICS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider")
METRIC_TITLES = {
    "bleu_1": "BLEU-1",
    "bleu_2": "BLEU-2",
    "bleu_3": "BLEU-3",
    "bleu_4": "BLEU-4",
    "meteor": "METEOR",
    "rouge_l": "ROUGE-L",
    "cider": "CIDEr",
}

_METEOR = None
_METEOR_LOCK = threading.Lock()


class CaptionScorerError(RuntimeError):
    """The caption scorers cannot run (library or Java missing, tokenizer failure)."""


def _library():
    try:
        # local import: an absent scorer package becomes one CaptionScorerError, not an import failure
        import pycocoevalcap  # noqa: F401, PLC0415  (namespace package: the scorers are its submodules)
        from pycocoevalcap.tokenizer import ptbtokenizer  # noqa: PLC0415
    except ImportError:
        raise CaptionScorerError("caption metrics need the pycocoevalcap package: pip install pycocoevalcap") from None
    return ptbtokenizer


def _java():
    java = shutil.which("java")
    if java is None:
        raise CaptionScorerError(
            "caption metrics need Java (the PTB tokenizer and METEOR are Java programs): "
            "install a JRE, e.g. apt-get install default-jre-headless"
        )
    return java


def ptb_tokenize(texts):
    """Stanford PTB tokenisation as the COCO evaluation applies it: [str] -> [str] (lower-cased tokens
    joined by spaces, punctuation tokens removed). Runs the tokenizer shipped with pycocoevalcap."""
    ptbtokenizer = _library()
    texts = [str(t).replace("\r", " ").replace("\n", " ") for t in texts]
    if not texts:
        return []
    jar = os.path.join(os.path.dirname(os.path.abspath(ptbtokenizer.__file__)), ptbtokenizer.STANFORD_CORENLP_3_4_1_JAR)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
        f.write("\n".join(texts) + "\n")
        path = f.name
    try:
        done = subprocess.run(
            [_java(), "-cp", jar, "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase", path],
            capture_output=True,
            timeout=600,
        )
    finally:
        os.remove(path)
    if done.returncode != 0:
        raise CaptionScorerError(
            f"the PTB tokenizer failed ({done.returncode}): {done.stderr.decode('utf-8', 'replace')[-2000:]}"
        )
    lines = done.stdout.decode("utf-8").split("\n")
    if len(lines) < len(texts) or any(line.strip() for line in lines[len(texts) :]):
        raise CaptionScorerError(f"the PTB tokenizer returned {len(lines)} lines for {len(texts)} captions")
    punctuation = set(ptbtokenizer.PUNCTUATIONS)
    return [" ".join(w for w in line.rstrip().split(" ") if w and w not in punctuation) for line in lines[: len(texts)]]


def _meteor():
    global _METEOR
    with _METEOR_LOCK:
        if _METEOR is None:
            _java()
            # local import: an absent scorer package becomes one CaptionScorerError, not an import failure
            from pycocoevalcap.meteor.meteor import Meteor  # noqa: PLC0415

            _METEOR = Meteor()
        return _METEOR


def _check_inputs(hypotheses, references):
    if isinstance(hypotheses, dict) != isinstance(references, dict):
        raise ValueError("hypotheses and references must both be dicts keyed by image id, or both be lists")
    if isinstance(hypotheses, dict):
        missing = [k for k in hypotheses if k not in references]
        extra = [k for k in references if k not in hypotheses]
        if missing or extra:
            raise ValueError(
                f"hypotheses and references must have the same image ids: only in hypotheses "
                f"{missing[:5]}, only in references {extra[:5]}"
            )
        keys = list(hypotheses)
        hyps = [hypotheses[k] for k in keys]
        refs = [references[k] for k in keys]
    else:
        hyps, refs = list(hypotheses), list(references)
        if len(hyps) != len(refs):
            raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} reference lists")
    if not hyps:
        raise ValueError("no captions to score")
    for i, (h, r) in enumerate(zip(hyps, refs)):
        if not isinstance(h, str):
            raise ValueError(f"hypothesis {i} must be a string, got {type(h).__name__}")
        if isinstance(r, str) or not r or not all(isinstance(x, str) for x in r):
            raise ValueError(f"references {i} must be a non-empty list of strings, got {r!r}")
    return hyps, refs


def score_captions(hypotheses, references, metrics=METRICS):
    """Corpus-level caption metrics, x 100.

    Args:
        hypotheses: one generated caption per image: a list, or a dict {image id: caption}.
        references: the reference captions of each image: a list of lists, or a dict {image id: [captions]}.
        metrics: names among ALL_METRICS ("bleu_1".."bleu_4", "meteor", "rouge_l", "cider").
    Returns {metric: score}.
    """
    unknown = [m for m in metrics if m not in ALL_METRICS]
    if unknown:
        raise ValueError(f"unknown caption metric(s) {unknown}; choose from {list(ALL_METRICS)}")
    hyps, refs = _check_inputs(hypotheses, references)
    _library()
    flat_refs = [r for group in refs for r in group]
    tokens = ptb_tokenize(hyps + flat_refs)
    res, gts, offset = {}, {}, len(hyps)
    for i, group in enumerate(refs):
        res[i] = [tokens[i]]
        gts[i] = tokens[offset : offset + len(group)]
        offset += len(group)
    scores = {}
    if any(m.startswith("bleu") for m in metrics):
        # local import: an absent scorer package becomes one CaptionScorerError, not an import failure
        from pycocoevalcap.bleu.bleu import Bleu  # noqa: PLC0415

        with contextlib.redirect_stdout(io.StringIO()):  # the scorer prints its n-gram counts
            bleu, _ = Bleu(4).compute_score(gts, res)
        for n in range(1, 5):
            if f"bleu_{n}" in metrics:
                scores[f"bleu_{n}"] = 100.0 * float(bleu[n - 1])
    if "meteor" in metrics:
        # METEOR's statistics line breaks on an empty hypothesis: score it as one unknown word.
        meteor_res = {k: [v[0] if v[0] else "<empty>"] for k, v in res.items()}
        score, _ = _meteor().compute_score(gts, meteor_res)
        scores["meteor"] = 100.0 * float(score)
    if "rouge_l" in metrics:
        # local import: an absent scorer package becomes one CaptionScorerError, not an import failure
        from pycocoevalcap.rouge.rouge import Rouge  # noqa: PLC0415

        scores["rouge_l"] = 100.0 * float(Rouge().compute_score(gts, res)[0])
    if "cider" in metrics:
        # local import: an absent scorer package becomes one CaptionScorerError, not an import failure
        from pycocoevalcap.cider.cider import Cider  # noqa: PLC0415

        scores["cider"] = 100.0 * float(Cider().compute_score(gts, res)[0])
    return {m: scores[m] for m in metrics}


def format_caption_report(scores, count=None, title="captioning"):
    """One line per metric, e.g. "BLEU-4: 5.70"."""
    head = f"{title} ({count} images)" if count is not None else title
    return "\n".join([head] + [f"{METRIC_TITLES.get(k, k)}: {v:.2f}" for k, v in scores.items()])
