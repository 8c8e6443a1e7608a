"""The text model's features: tokenising, word and character n-grams, the dense cues, and the feature space.

Identical at training, fine-tuning and inference time:

* word unigrams (tweet-normalised: ``@user``, ``http``, digits -> ``0``, elongations capped,
  negation scope marked with ``~``) and word bigrams,
* character 2-5-grams inside each word: scikit-learn's ``char_wb`` analyser applied to the token
  (:func:`char_wb_analyser`; :func:`char_grams` is the same grams without scikit-learn, for inference),
* a few dense "signal" features: VADER's neg / neu / pos / compound, ``!`` / ``?`` runs, capitals,
  emoticons, and suggestion cues (``should``, ``please``, ``would be nice`` ...).

Sparse features of a text are scaled by ``1 / sqrt(number of tokens)``.
"""
from __future__ import annotations

import html
import math
import re
from collections import Counter
from typing import Callable, Iterable, Sequence

import numpy as np

from socialcrm.core.engine.learning.sentiment import analyzer

SENTIMENT_LABELS = ("negative", "neutral", "positive")
N_OUT = 6  # output columns: negative, neutral, positive, complaint, suggestion, question
COL_COMPLAINT = 3
COL_SUGGESTION = 4
COL_QUESTION = 5
#: The output columns of the binary heads, by head name (each has its own threshold).
BINARY_COLUMNS = {"complaint": COL_COMPLAINT, "suggestion": COL_SUGGESTION, "question": COL_QUESTION}

_ESCAPED_U = re.compile(r"\\u([0-9a-fA-F]{4})")
_URL = re.compile(r"https?://\S+|www\.\S+")
_USER = re.compile(r"@\w+")
_DIGIT = re.compile(r"\d")
_ELONG = re.compile(r"(\w)\1{2,}")
_CAPS = re.compile(r"\b[A-Z][A-Z']+\b")
_STRIP = re.compile("[\ufe0f\u200d\U0001f3fb-\U0001f3ff]")
_TOKEN = re.compile(
    r"""
    (?:[:;=][\-o\*']?[\)\]\(\[dDpP/\\|3]|<3)(?!\w)   # emoticons
    | \#?\w[\w']*                                      # words, hashtags, @user, http
    | !+\?[!?]* | \?+![!?]* | !+ | \?+                  # ! ? runs
    | \.{2,} | …                                       # ellipsis
    | [^\w\s]                                          # any other symbol (emoji one by one)
    """,
    re.VERBOSE,
)
_NEGATORS = frozenset(
    "not no never cannot cant dont doesnt didnt isnt arent wasnt werent wont wouldnt "
    "shouldnt couldnt aint havent hasnt hadnt nothing nobody none nor neither without".split()
)
_SCOPE_END = frozenset(". , ! ? ; : !! ?? ?! ... … but".split())
_POS_EMOTICONS = frozenset(":) :-) :] =) ;) ;-) :d :-d ;d =d :p :-p ;p <3 ❤ 😀 😁 😂 😃 😄 😊 😍 😘 🙂 👍 💕 💙 ♥ ☺ 😎 🎉 🙌 👏 💯 😉".split())
_NEG_EMOTICONS = frozenset(":( :-( :[ =( :/ :-/ :\\ :| 😡 😠 😤 😒 😞 😢 😭 😩 😫 🙁 ☹ 👎 😑 😐 🤬 😣 😖 😔".split())
_SUGGEST_CUES = re.compile(
    r"\b(?:should|would be (?:nice|great|good|better|awesome|helpful|cool)|it would be|would love|"
    r"i wish|please (?:add|make|allow|provide|include|consider|fix|support|bring|let)|"
    r"(?:could|can) you (?:please )?(?:add|make|allow|provide|include|consider|support|bring)|"
    r"why not|how about|feature request|need(?:s)? to be|ought to|would like to see|"
    r"allow (?:us|users|me|the user)|let (?:us|users|me)|there should|suggest|recommend|"
    r"(?:add|provide|include|implement|introduce|enable) (?:a|an|the|support|option|ability))\b"
)
_MODAL = re.compile(r"\b(?:should|could|would|must|might|need|needs|shall)\b")
#: Words that open an English question (wh-words, auxiliaries and "anyone"), for the question head.
_QUESTION_OPENERS = frozenset(
    "what whats what's how hows how's why when where who whos who's whom whose which is isnt are arent am was "
    "were do dont does doesnt did didnt can cant could will wont would should shall may might have has any "
    "anyone anybody someone".split()
)
_NOT_CONTENT = frozenset(("@", "http", "rt"))  # and the "user" after "@" (a mention's two tokens)

DENSE_NAMES = (
    "VADER negative",
    "VADER neutral",
    "VADER positive",
    "VADER compound (+)",
    "VADER compound (-)",
    "'!'",
    "'?'",
    "CAPITALS",
    "positive emoticon",
    "negative emoticon",
    "suggestion phrase",
    "modal verb",
    "negation",
    "link",
    "mentions",
    "length",
    # appended later: a model file with the first 16 only gets zero weights for these (modelfile.read_model)
    "ends with '?'",
    "opens with a question word",
)
N_DENSE = len(DENSE_NAMES)


def normalise(text: str) -> str:
    """Undo the escapes exports leave in texts: literal ``\\uXXXX`` and HTML entities."""
    if "\\u" in text:
        text = _ESCAPED_U.sub(lambda m: chr(int(m.group(1), 16)), text)
    if "&" in text:
        text = html.unescape(text)
    return text


def tokenise(text: str) -> tuple[list[str], list[float]]:
    """Return (tokens, raw dense cues) for an already :func:`normalise`\\ d text."""
    n_urls = 0
    if "http" in text or "www." in text:
        text, n_urls = _URL.subn(" http ", text)
    n_users = 0
    if "@" in text:
        text, n_users = _USER.subn(" @user ", text)
    n_caps = len(_CAPS.findall(text))
    low = text.lower().replace("\u2019", "'")
    low = _STRIP.sub("", low)
    low = _DIGIT.sub("0", low)
    low = _ELONG.sub(r"\1\1", low)
    toks = _TOKEN.findall(low)
    # negation scope: mark words after a negator until punctuation (at most 4 words)
    out = []
    scope = 0
    n_neg = 0
    n_excl = n_quest = pos_emo = neg_emo = 0
    for t in toks:
        c = t[0]
        if c.isalnum() or c == "#" or c == "_":
            if scope:
                out.append("~" + t)
                scope -= 1
            else:
                out.append(t)
            if t in _NEGATORS or t.endswith("n't"):
                scope = 4
                n_neg += 1
            continue
        scope = 0 if t in _SCOPE_END else scope
        if "!" in t:
            n_excl += 1
        if "?" in t:
            n_quest += 1
        if t in _POS_EMOTICONS:
            pos_emo += 1
        elif t in _NEG_EMOTICONS:
            neg_emo += 1
        out.append(t)
    n_sugg = len(_SUGGEST_CUES.findall(low))
    n_modal = len(_MODAL.findall(low))
    n = max(len(out), 1)
    # the sentence's shape, not its words: where the '?' is, and what opens it (mentions, links, hashtags
    # and "RT" aside)
    ends_q = opens_q = 0.0
    if n_quest:  # scanned from the end, stopping at the first content token
        for i in range(len(out) - 1, -1, -1):
            t = out[i]
            if t in _NOT_CONTENT or t[0] == "#" or (t == "user" and i and out[i - 1] == "@"):
                continue
            ends_q = 1.0 if "?" in t else 0.0
            break
    for i, t in enumerate(out):  # the first word, mentions, links, hashtags and "RT" aside
        if t in _NOT_CONTENT or t[0] == "#" or (t == "user" and i and out[i - 1] == "@") or not t[0].isalnum():
            continue
        opens_q = 1.0 if t in _QUESTION_OPENERS else 0.0
        break
    cues = [
        min(n_excl, 3) / 3.0,
        min(n_quest, 3) / 3.0,
        min(n_caps, 4) / 4.0,
        min(pos_emo, 2) / 2.0,
        min(neg_emo, 2) / 2.0,
        min(n_sugg, 2) / 2.0,
        min(n_modal, 2) / 2.0,
        min(n_neg, 2) / 2.0,
        1.0 if n_urls else 0.0,
        min(n_users, 3) / 3.0,
        min(math.log1p(n) / 4.0, 1.5),
        ends_q,
        opens_q,
    ]
    return out, cues


def gram_word(tok: str) -> str | None:
    """The word whose character n-grams a token contributes, or None (``@user``, ``http``, symbols)."""
    if tok[0] == "~" and len(tok) > 1:
        tok = tok[1:]
    if tok == "@user" or tok == "http" or not (tok[0].isalnum() or tok[0] == "#" or tok[0] == "_"):
        return None
    return tok


def char_grams(tok: str, nmin: int, nmax: int) -> list[str]:
    """A token's character n-grams, in the order and with the repeats of scikit-learn's ``char_wb``
    analyser (see :func:`char_wb_analyser`) for ``nmin <= 3``; written out because inference must not
    need scikit-learn and calls this once per new token (tests/test_textmodel.py checks the two agree)."""
    word = gram_word(tok)
    if word is None:
        return []
    s = " " + word + " "
    L = len(s)
    out = []
    for n in range(nmin, nmax + 1):
        if n > L:
            break
        out.extend([s[i : i + n] for i in range(L - n + 1)])
    return out


def char_wb_analyser(char_range: tuple[int, int]) -> Callable[[str], list[str]]:
    """scikit-learn's ``char_wb`` analyser as a token -> character n-grams function (training side).

    Tokens are already lower-cased and hold no whitespace, so the analyser sees each word alone."""
    from sklearn.feature_extraction.text import CountVectorizer

    analyse = CountVectorizer(analyzer="char_wb", ngram_range=tuple(char_range), lowercase=False).build_analyzer()

    def grams(tok: str) -> list[str]:
        word = gram_word(tok)
        return [] if word is None else analyse(word)

    return grams


def bigrams(toks: list[str]) -> list[str]:
    """Adjacent token pairs, joined by a space."""
    return [a + " " + b for a, b in zip(toks, toks[1:])]


def dense_features(lex: dict, cues: list[float]) -> list[float]:
    """VADER's scores (compound split into its positive and negative part) followed by the text's cues."""
    c = float(lex.get("compound", 0.0))
    return [
        float(lex.get("neg", 0.0)),
        float(lex.get("neu", 0.0)),
        float(lex.get("pos", 0.0)),
        c if c > 0 else 0.0,
        -c if c < 0 else 0.0,
    ] + cues


def vader_scores(texts: Sequence[str]) -> list[dict]:
    """VADER's polarity scores of each text, from the package's one shared analyser."""
    ps = analyzer().polarity_scores
    return [ps(t) for t in texts]


class Analysed:
    """Texts turned into tokens + dense features (training / fine-tuning side)."""

    def __init__(self, texts: Sequence[str], lexicon: Sequence[dict] | None = None):
        texts = [normalise(t or "") for t in texts]
        if lexicon is None:
            lexicon = vader_scores(texts)
        self.toks: list[list[str]] = []
        dense = []
        for t, lex in zip(texts, lexicon):
            toks, cues = tokenise(t)
            self.toks.append(toks)
            dense.append(dense_features(lex or {}, cues))
        self.dense = np.asarray(dense, dtype=np.float64).reshape(len(texts), N_DENSE)

    def __len__(self):
        return len(self.toks)


class FeatureSpace:
    """Column layout of the sparse feature matrix: [uni | bi | char | dense].

    Values: token / bigram / char-gram counts times 1/sqrt(n_tokens), dense features as is.
    This is exactly what TextModel computes at inference (there the unigram and char-gram
    weights of a token are pre-summed into one row).  ``grams`` turns a token into its character
    n-grams (default :func:`char_grams`; training passes :func:`char_wb_analyser`)."""

    def __init__(self, uni, bi, chars, char_range, grams: Callable[[str], list[str]] | None = None):
        self.uni = list(uni)
        self.bi = list(bi)
        self.chars = list(chars)
        self.char_range = tuple(char_range)
        self.grams = grams or (lambda tok: char_grams(tok, *self.char_range))
        self.ui = {w: i for i, w in enumerate(self.uni)}
        self.bo = len(self.uni)
        self.bidx = {w: i for i, w in enumerate(self.bi)}
        self.co = self.bo + len(self.bi)
        self.cidx = {g: i for i, g in enumerate(self.chars)}
        self.do = self.co + len(self.chars)
        self.ncol = self.do + N_DENSE
        self._tokcols: dict[str, list[int]] = {}

    @classmethod
    def build(cls, corpora: Iterable[Analysed], opts: dict, grams: Callable[[str], list[str]]) -> "FeatureSpace":
        """The vocabularies of the corpora: n-grams in at least ``min_df_*`` texts."""
        cu, cb, cc = Counter(), Counter(), Counter()
        gram_cache: dict[str, list[str]] = {}
        for corpus in corpora:
            for toks in corpus.toks:
                st = set(toks)
                cu.update(st)
                cb.update(set(bigrams(toks)))
                gs = set()
                for t in st:
                    g = gram_cache.get(t)
                    if g is None:
                        g = gram_cache[t] = grams(t)
                    gs.update(g)
                cc.update(gs)
        uni = sorted(w for w, c in cu.items() if c >= opts["min_df_uni"])
        bi = sorted(w for w, c in cb.items() if c >= opts["min_df_bi"])
        chars = sorted(g for g, c in cc.items() if c >= opts["min_df_char"])
        return cls(uni, bi, chars, tuple(opts["char_range"]), grams)

    def _cols_of_token(self, t: str) -> list[int]:
        cols = self._tokcols.get(t)
        if cols is None:
            cols = []
            u = self.ui.get(t)
            if u is not None:
                cols.append(u)
            co = self.co
            cg = self.cidx.get
            cols.extend(co + i for i in map(cg, self.grams(t)) if i is not None)
            self._tokcols[t] = cols
        return cols

    def matrix(self, corpus: Analysed):
        """The corpus's feature rows as a scipy CSR matrix: counts scaled by 1/sqrt(tokens), dense cues as they are."""
        import scipy.sparse as sp

        indptr = [0]
        indices: list[int] = []
        data: list[float] = []
        bo, do = self.bo, self.do
        bg = self.bidx.get
        for toks, dense in zip(corpus.toks, corpus.dense.tolist()):
            s = 1.0 / math.sqrt(len(toks) or 1)
            row: dict[int, float] = {}
            for t in toks:
                for c in self._cols_of_token(t):
                    row[c] = row.get(c, 0.0) + s
            for b in map(bg, bigrams(toks)):
                if b is not None:
                    c = bo + b
                    row[c] = row.get(c, 0.0) + s
            for j, v in enumerate(dense):
                if v:
                    row[do + j] = v
            indices.extend(row.keys())
            data.extend(row.values())
            indptr.append(len(indices))
        return sp.csr_matrix((np.asarray(data, dtype=np.float64), np.asarray(indices, dtype=np.int64),
                              np.asarray(indptr, dtype=np.int64)), shape=(len(corpus), self.ncol))

    def block_scales(self, alpha_char: float, alpha_bi: float, alpha_dense: float) -> np.ndarray:
        """Per-column scales: 1 for unigrams, the alphas for bigrams, char n-grams and dense features."""
        d = np.ones(self.ncol)
        d[self.bo : self.co] = alpha_bi
        d[self.co : self.do] = alpha_char
        d[self.do :] = alpha_dense
        return d
