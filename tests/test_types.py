"""Queries, spam and news, decided by the model and the content library together; languages in reasons.

The question head is not in today's artefact (its threshold is above 1, so it never fires), so the
tests that need it wrap the real model in a stub whose question head says what the test needs.
"""
import json
from dataclasses import replace
from pathlib import Path

import pytest

from socialcrm.core.engine.learning.classifier import Classifier
from socialcrm.core.engine.learning.textmodel import TextModel
from socialcrm.core.engine.learning.typequality import gold_of, type_quality
from socialcrm.core.sdk.brand import Brand
from socialcrm.core.sdk.model import mention_from_json

BRAND = Brand("Brightwave", handles=["@Brightwave", "@BrightwaveHelp"], keywords=["WaveBox"],
              competitors=["Orbit Fiber", "@OrbitFiber"])
REPO = Path(__file__).resolve().parents[1]
SPAM_FIXTURE = REPO / "tests" / "learning_fixtures" / "spam.jsonl"


class StubModel:
    """The bundled model with a question head that answers ``question(text)``, and chosen languages."""

    def __init__(self, question=lambda text: 0.0, threshold=0.5, languages=("en",)):
        self.base = TextModel.default()
        self.question, self.question_threshold, self.languages = question, threshold, tuple(languages)
        self.complaint_threshold = self.base.complaint_threshold
        self.suggestion_threshold = self.base.suggestion_threshold

    def score(self, texts, lexicons=None):
        """The real heads' scores, with the stub's P(question)."""
        return [replace(s, question=self.question(t)) for s, t in zip(self.base.score(texts, lexicons), texts)]


def learn(classifier, text, **extra):
    data = {"network": "x", "id": "1", "text": text, "created_at": "2026-10-01T10:00:00Z",
            "author": {"handle": "someone", "followers": 100}}
    data.update(extra)
    return classifier.learn_one(mention_from_json(data))


def why(record):
    return " | ".join(record.reasons)


@pytest.fixture(params=["lexicon", "model"])
def classifier(request):
    return Classifier(BRAND, model=TextModel.default() if request.param == "model" else None)


# ------------------------------------------------------------------ spam

def test_a_giveaway_is_spam_with_the_signal_named(classifier):
    record = learn(classifier, "🎉 GIVEAWAY 🎉 RT & follow to win a £200 Brightwave voucher! Ends tonight #giveaway")
    assert record.type == "spam", why(record)
    assert "contest mechanics ('RT & follow to win')" in why(record)


@pytest.mark.parametrize("text", [
    "@BrightwaveHelp I was charged twice this month, screenshot here https://imgur.com/a/x7Yq2 please fix this",
    "@BrightwaveHelp the promo code from your email doesn't work at checkout https://brightwave.co.uk/cart",
    "@BrightwaveHelp still no engineer after 3 weeks, case number 44821, thread: https://forum.example.com/t/44821 "
    "https://forum.example.com/t/44822 click here to see how many of us there are",
])
def test_a_complaint_to_the_brand_with_a_link_is_not_spam(classifier, text):
    record = learn(classifier, text)
    assert record.type in ("case", "rant"), why(record)


@pytest.mark.parametrize("text, signal", [
    ("Get 10,000 followers in 24h 💯 real & active → growfast-socials.com", "sells followers or reach"),
    ("@jo_93 same happened to me, contact @hackfixer_sam on telegram, he recovered mine", "off the platform"),
    ("Top 10 broadband deals 🔥 read more → cheap-deals.info/bb?ref=2291", "an affiliate link"),
    ("I turned £300 into £9,000 in a week with Brightwave crypto signals, ask me how", "a money claim"),
])
def test_spam_shapes_are_named_in_the_reason(classifier, text, signal):
    record = learn(classifier, text)
    assert record.type == "spam" and signal in why(record), why(record)


def test_a_spam_hint_alone_is_ordinary_talk(classifier):
    for text in ("che casino oggi in ufficio", "Lost £20 at the casino last night, what a weekend",
                 "does anyone know when the presale starts?", "thanks for the follows, I'll follow back later"):
        assert learn(classifier, text).type != "spam", text


def test_the_spam_fixture_is_told_from_its_hard_negatives(classifier):
    """tests/learning_fixtures/spam.jsonl: spam written for this test in the shapes the brief names
    (giveaways, follow trains, sold reach, self-promotion, link farms, money schemes, recovery scams,
    adult bait, fake offers) in seven languages, and hard negatives (complaints with links, posts that
    use spam words innocently, news with links). It was written before the spam signals were tuned on
    it, and none of its wording comes from the bundled samples."""
    rows = [json.loads(line) for line in SPAM_FIXTURE.read_text(encoding="utf-8").splitlines()]
    records = classifier.learn([mention_from_json({"network": "x", "id": r["id"], "text": r["text"], "lang": r["lang"],
                                                   "created_at": "2026-10-01T10:00:00Z"}) for r in rows])
    quality = type_quality(rows, records, ["spam"])["spam"]
    wrongly = [r["text"] for r, rec in zip(rows, records) if not r["spam"] and rec.type == "spam"]
    assert not wrongly
    assert quality.support >= 50 and quality.recall >= 0.9, quality


def test_the_bundled_samples_spam_is_found():
    rows = [json.loads(line) for line in (REPO / "samples" / "mentions.jsonl").open(encoding="utf-8")]
    classifier = Classifier(BRAND, model=TextModel.default())
    quality = type_quality(rows, classifier.learn([mention_from_json(r) for r in rows]))
    assert quality["spam"].support == 30
    assert quality["spam"].recall >= 0.9 and quality["spam"].precision >= 0.95, quality["spam"]


def test_real_posts_are_hardly_ever_spam(shared_datasets):
    """~20k real posts of the shared data (customer care and general tweets), where almost none is spam."""
    rows = []
    for name in ("airline_sentiment", "complaints", "tweet_acts"):
        rows += [json.loads(line) for line in (shared_datasets / name / "train.jsonl").open(encoding="utf-8")]
    classifier = Classifier(Brand(name=""))
    records = classifier.learn([mention_from_json({"network": "x", "id": r["id"], "text": r["text"], "lang": "en",
                                                   "created_at": "2026-10-01T10:00:00Z"}) for r in rows])
    spam = type_quality(rows, records, ["spam"], unlabelled_negative=True)["spam"]
    assert spam.n == len(rows) > 19_000
    assert spam.false_positive_rate < 0.002, [r.content for r in records if r.type == "spam"][:20]


# ------------------------------------------------------------------ queries

def asks(text):
    return 0.9 if "?" in text else 0.1


def test_a_question_to_the_brand_is_a_query():
    classifier = Classifier(BRAND, model=StubModel(asks))
    record = learn(classifier, "@Brightwave does the WaveBox 2 support WPA3? can't see it in the spec sheet")
    assert record.type == "query", why(record)
    assert "model: question p=0.90 (>= 0.50)" in why(record) and "asks a question" in why(record)


def test_a_complaint_the_complaint_head_is_sure_of_stays_a_complaint_when_asked_as_a_question():
    # "why is my parcel late?" waits for an answer, but it is a complaint to work, not a query
    classifier = Classifier(Brand(name=""), model=StubModel(asks))
    record = learn(classifier, "@UPS why is my 3 day select package still not delivered for the 2nd day in a row?")
    assert record.type in ("case", "rant"), why(record)
    assert "a complaint asked as a question" in why(record) or "a help request" in why(record)


@pytest.mark.parametrize("question", [asks, lambda text: 0.2])
def test_a_rhetorical_question_in_a_rant_is_not_a_query(question):
    classifier = Classifier(BRAND, model=StubModel(question))
    record = learn(classifier, "Brightwave down AGAIN. how hard is it to keep a line up? useless, absolutely useless")
    assert record.type in ("case", "rant"), why(record)
    assert "a rhetorical question ('how hard is it')" in why(record)


def test_the_question_head_does_not_take_a_help_request_or_a_prospect():
    classifier = Classifier(BRAND, model=StubModel(asks))
    help_request = learn(classifier, "@BrightwaveHelp my internet is not working and I was charged twice, can you check?")
    assert help_request.type == "case" and "a help request" in why(help_request), why(help_request)
    prospect = learn(classifier, "thinking of switching to Brightwave, how much is fibre in Leeds?")
    assert prospect.type == "lead" and "a prospect's question" in why(prospect), why(prospect)


def test_a_question_the_head_rejects_counts_little():
    classifier = Classifier(BRAND, model=StubModel(lambda text: 0.05))
    record = learn(classifier, "guess who's back on Brightwave? this guy. see you all on the forum")
    assert record.type != "query", why(record)
    assert "model: not a question (p=0.05 < 0.50)" in why(record)


def test_without_a_question_head_the_question_mark_decides_as_before():
    model = TextModel.default().copy()
    model.question_threshold = 1.01  # what a model without a question head carries: the head never fires
    record = learn(Classifier(BRAND, model=model), "does anyone know if Brightwave fibre works with my own router?")
    assert record.type == "query" and "model: question" not in why(record), why(record)


def test_in_a_language_the_question_head_never_read_the_question_mark_decides():
    # the bundled question head learnt from English tweets only; a Spanish question is a query by its '?'
    classifier = Classifier(BRAND, model=TextModel.default())
    record = learn(classifier, "@Brightwave ¿cómo descargo las facturas antiguas desde la app?", lang="es")
    assert record.type == "query" and "model: question" not in why(record), why(record)


def test_a_question_asked_of_the_brand_is_a_query_below_the_heads_general_threshold():
    classifier = Classifier(BRAND, model=TextModel.default())
    record = learn(classifier, "hey @BrightwaveHelp quick one - how do I get my PAC code? app just spins and spins")
    assert record.type == "query" and "asks the brand a question" in why(record), why(record)


def test_a_question_mark_inside_a_link_asks_nothing():
    classifier = Classifier(BRAND)
    assert learn(classifier, "Brightwave fibre in our street at last https://t.co/abc?amp=1").type != "query"


# ------------------------------------------------------------------ news

def test_a_news_headline_from_a_feed_is_news(classifier):
    record = learn(classifier, "Brightwave Mobile suffers nationwide outage — Customers across the UK were left "
                               "without calls or data for nine hours", network="rss",
                   url="https://www.ukbizdaily.co.uk/2026/11/03/brightwave-mobile-suffers-nationwide-outage")
    assert record.type == "news", why(record)
    assert "an article from a feed" in why(record)


def test_a_personal_post_in_a_feed_is_not_news(classifier):
    record = learn(classifier, "Why I finally left Brightwave after eight years — price rises and a support system "
                               "designed to make you give up", network="rss",
                   url="https://someone.substack.com/p/why-i-finally-left")
    assert record.type != "news", why(record)


def test_an_outage_report_is_news_not_a_rant(classifier):
    record = learn(classifier, "BREAKING: Brightwave Mobile customers across the UK are reporting loss of calls and "
                               "data. The company says engineers are working urgently to restore service.")
    assert record.type == "news", why(record)
    assert "a news headline opener" in why(record)


def test_hacker_news_story_titles_are_news_but_ask_hn_is_not(classifier):
    story = learn(classifier, "WaveBox 2 teardown: Brightwave's new router runs a five-year-old kernel",
                  network="hackernews")
    assert story.type == "news", why(story)
    ask = learn(classifier, "Ask HN: ISP recommendations for a small office in Bristol?", network="hackernews")
    assert ask.type != "news", why(ask)


def test_news_said_to_the_brand_is_not_news(classifier):
    record = learn(classifier, "@BrightwaveHelp according to the news there's an outage in Bristol, is that why "
                               "my internet is not working?")
    assert record.type != "news", why(record)


# ------------------------------------------------------------------ languages in reasons

def test_sentiment_names_a_language_the_model_was_trained_on():
    classifier = Classifier(BRAND, model=StubModel(languages=("en", "de", "es")))
    german = learn(classifier, "Das Internet von Brightwave ist seit Tagen weg, eine Katastrophe", lang="de")
    assert any("language de, which the model was trained on" in r for r in german.reasons), why(german)
    dutch = learn(classifier, "Het internet van Brightwave is al dagen weg, een ramp", lang="nl")
    assert any("language 'nl' has no training data (the model was trained on en, de, es), low confidence" in r
               for r in dutch.reasons), why(dutch)
    assert dutch.confidence < german.confidence


def test_the_lexicon_path_says_vader_is_english_only():
    classifier = Classifier(BRAND)
    english = learn(classifier, "my Brightwave router is great")
    assert any("VADER is English-only, language en" in r for r in english.reasons)
    spanish = learn(classifier, "mi router de Brightwave es genial", lang="es")
    assert any("VADER is English-only and this is language 'es', low confidence" in r for r in spanish.reasons)
    assert spanish.confidence < english.confidence


# ------------------------------------------------------------------ per-type figures

def test_type_quality_counts_each_type_against_the_rest():
    classifier = Classifier(BRAND)
    rows = [{"text": "free followers here → growfast.com", "label": {"type": "spam"}},
            {"text": "does anyone know if Brightwave does static IPs?", "label": {"type": "query"}},
            {"text": "my internet is not working", "label": {"type": "case"}},
            {"text": "who else wants to know?", "question": True},
            {"text": "a statement", "question": False},
            {"text": "no labels at all"}]
    records = classifier.learn([mention_from_json({"network": "x", "id": str(i), "text": r["text"],
                                                   "created_at": "2026-10-01T10:00:00Z"}) for i, r in enumerate(rows)])
    quality = type_quality(rows, records)
    assert quality["spam"].n == 3 and quality["spam"].support == 1  # only label.type rows speak of spam
    assert quality["query"].n == 5 and quality["query"].support == 2  # tweet_acts' "question" stands for query
    predicted_queries = sum(r.type == "query" for r, row in zip(records, rows) if gold_of(row, "query") is not None)
    assert quality["query"].predicted == predicted_queries
    assert type_quality(rows, records, ["spam"], unlabelled_negative=True)["spam"].n == 6
    assert quality["spam"].as_dict()["precision"] == round(quality["spam"].precision, 4)
    with pytest.raises(ValueError, match="6 rows but 5 records"):
        type_quality(rows, records[:5])
