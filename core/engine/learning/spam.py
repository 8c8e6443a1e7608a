"""Spam signals: what the content library's spam terms miss, read from a post's shape.

Social spam (self-promotion, link farms, giveaways, money schemes) gives itself away less by its
words than by what it asks of the reader: a link or a handle with a call to action ("link in bio",
"claim ... before midnight ->"), stuffed hashtags, an obfuscated domain ("deals . com"), a money claim
("make £500 a day", "turned £500 into £8,000"), a run of hype emoji, or copies by other accounts.
Each signal adds to a spam score with the sentence that says why; the classifier adds the content
library's spam terms and decides. No single shape signal reaches the spam bar alone (1.5): a real
complaint that carries a link, or a fan with many hashtags, stays what it is.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from socialcrm.core.engine.learning.terms import TermMatcher, tokens

#: What one content-library spam term weighs ("free followers" alone makes spam).
TERM_WEIGHT = 1.5
#: What one spam hint weighs: a hint needs a second signal (a link with a call to action, an offer,
#: another hint) to make spam, because alone it is ordinary talk ("che casino", "presale is tomorrow").
HINT_WEIGHT = 0.75
#: A spam score at or above this makes a post spam, when no actionable type scores higher.
SPAM_AT = 1.5

# Web links: with a scheme or www., a masked bare "http" (as datasets write them), and bare domains on
# the endings spam favours ("bit.ly/x", "t.me/x", "deals-uk.shop"). Read word by word: a pattern tried
# at every character of every post costs more than the rest of the spam signals together.
_DOMAIN = re.compile(r"(?:[a-z0-9][a-z0-9-]*\.)+(?:com|net|org|co|uk|io|me|ly|gg|to|tv|cc|shop|store|xyz|link|"
                     r"info|biz|club|online|site|top|live|app|win|vip|bet|promo|deals)(?:/\S*)?", re.IGNORECASE)
_WORD_EDGES = "([{<\"'“‘«>}])\"'”’».,;:!?…→➡⇒👉"


def find_links(text: str) -> list[str]:
    """The links in ``text``, as written."""
    if "." not in text and "http" not in text:
        return []
    links = []
    for word in text.split():
        if "." not in word and "http" not in word and "HTTP" not in word:
            continue
        low = word.lower()
        if "http" in low or low.startswith("www."):
            links.append(word)
        elif "@" not in word and _DOMAIN.fullmatch(word.strip(_WORD_EDGES)):
            links.append(word)
    return links


_OBFUSCATED = re.compile(r"\b[a-z0-9-]{3,}\s+\.\s*(?:com|net|org|co|shop|xyz|link|info)\b", re.IGNORECASE)
_HANDLE = re.compile(r"(?<![\w@])@\w+")
_ENGAGE_WORDS = frozenset({"rt", "retweet", "repost", "follow", "like", "share", "tag", "comment", "subscribe"})
_REACH_WORDS = frozenset({"followers", "follows", "likes", "views", "subscribers", "subs", "retweets"})
_DOMAIN_ENDINGS = frozenset({"com", "net", "org", "co", "shop", "xyz", "link", "info"})
_LEADING_HANDLES = re.compile(r"^(?:\s*(?:RT\s+)?\.?@\w+:?)+")
_DISCOUNT = re.compile(r"\b\d{2,3}\s?%\s?(?:off|discount|rabatt|de descuento|de réduction|sconto)\b", re.IGNORECASE)
_HYPE = "🔥🚀💸💰🎁💯🤑✅👉👇➡⇒→🔁📈💎"
#: A third-party account sold as the fix ("contact @fix_it_now on Instagram, she's legit"): the
#: recovery-scam reply. A brand's own handles are never counted.
_CONTACT_HANDLE = re.compile(r"\b(?:contact|message|reach out to|hit up)\s+(?:@\w+|(?:him|her|them)\b)",
                             re.IGNORECASE)
# "make £500 a day", "earn $3,000/week", "turned £500 into £8,000", "made £212 last month", "90% off"
_MONEY = r"[£$€]\s?\d[\d,.]*k?|\d[\d,.]*k?\s?(?:€|euros?|dollars|pounds|usd)"
_MONEY_CLAIM = re.compile(
    rf"\b(?:make|making|made|earn|earning|earned|gana|gagne[rz]?|verdiene|ganhe|guadagna)\w*\s+(?:up to\s+)?(?:{_MONEY})"
    rf"|\bturned\s+(?:{_MONEY})\s+into\s+(?:{_MONEY})"
    rf"|(?:{_MONEY})\s*(?:a|per|/)\s*(?:day|week|hour|month|wk|hr)\b",
    re.IGNORECASE)
# "... on Instagram / Telegram / WhatsApp": the pitch moves where the platform cannot see it.
_OFF_PLATFORM = re.compile(r"\b(?:on|via|at)\s+(?:instagram|insta|ig|telegram|whatsapp|snapchat|signal|wechat)\b",
                           re.IGNORECASE)
# A phone number or chat link to write to off the platform ("WhatsApp +44 7700 900123", "wa.me/...").
_CHAT_CONTACT = re.compile(r"\b(?:whatsapp|telegram|wa|signal)\s*[:.]?\s*(?:\+?\d[\d\s-]{6,}|me/\S+)|\bt\.me/\S+",
                           re.IGNORECASE)
# Contest mechanics: "RT & follow to win", "follow + rt", "like, share and tag 2 friends".
_ENGAGE = r"(?:rt|retweet|repost|follow|like|share|tag|comment|subscribe)"
_CONTEST = re.compile(rf"\b{_ENGAGE}\b(?:(?!\bif\b)[^.!?\n]){{0,30}}?\bto\s+(?:win|enter)\b"  # not "rt if you want X to win"
                      rf"|\b{_ENGAGE}\b(?:\s+(?:us|me|this|all|everyone))?\s*(?:[+&,]|and|\d\))\s*{_ENGAGE}\b",
                      re.IGNORECASE)
# Selling reach: "gain 500 followers", "1k likes for $4.99", "get your TikTok 100k views".
_REACH = r"(?:followers|follows|likes|views|subscribers|subs|retweets)"
_SELLING_REACH = re.compile(rf"\b(?:gain|get|buy|grow|boost)\b[^.!?\n]{{0,25}}?\d[\d,.]*k?\s+(?:real\s+|active\s+)?{_REACH}\b"
                            rf"|\b\d[\d,.]*k?\s+{_REACH}\s+for\s+(?:only\s+)?[£$€]",
                            re.IGNORECASE)
# A free prize with a value: "£250 Amazon gift card", "$15 free", "FREE £100 voucher".
_FREE_PRIZE = re.compile(rf"(?:{_MONEY})\s+(?:\w+\s+)?(?:gift\s?card|voucher|free|credit|bonus)\b"
                         rf"|\bfree\s+(?:{_MONEY})|\bfree\b[^.!?\n]{{0,20}}\b(?:gift\s?cards?|vouchers?|iphone|ps5|tokens?)\b",
                         re.IGNORECASE)
# A link that pays whoever posts it: referral and affiliate parameters.
_AFFILIATE = re.compile(r"[?&](?:ref|aff|affiliate|partner|promo|coupon|tag)=|/ref/|/aff/", re.IGNORECASE)

#: Calls to action, per language: on their own they are ordinary words, beside a link or a handle
#: they are the pitch. English phrases apply in every language.
CALLS_TO_ACTION: dict[str, list[str]] = {
    "en": ["click", "click here", "tap here", "tap the link", "link in bio", "link in my bio", "details in bio",
           "check my bio", "in my bio", "in bio", "dm me", "dm me for", "dm now", "dm for", "message me", "sign up now",
           "join now", "register now", "subscribe", "check out", "check it out", "read more", "order now",
           "buy now", "shop now", "get yours", "get it now", "claim", "claim your", "grab", "grab yours",
           "follow me", "follow us", "follow for", "follow +", "follow and", "follow &", "+ rt", "+ repost",
           "rt to win", "retweet to win", "tag a friend", "tag 3 friends", "tag your friends",
           "share this", "ask me how", "don't miss", "hurry", "limited time", "today only", "before midnight",
           "first come first served", "act now", "visit", "download now", "apply now", "enter now", "use code", "use my code",
           "👉", "👇", "➡️", "➡", "⇒", "→"],
    "es": ["haz clic", "pincha aquí", "enlace en mi perfil", "link en mi perfil", "link en bio", "sigue esta cuenta",
           "síguenos", "sígueme", "menciona a", "etiqueta a", "participa", "compra ya", "visita", "regístrate",
           "solo hoy", "no te lo pierdas", "escríbeme"],
    "fr": ["cliquez", "clique ici", "lien dans ma bio", "lien en bio", "abonne-toi", "abonnez-vous", "suivez",
           "tente ta chance", "tag un ami", "identifie", "participez", "aujourd'hui seulement", "profitez"],
    "de": ["klicken", "klick hier", "link in der bio", "folgt", "folge mir", "teilen", "teilt", "liked", "markiere",
           "markiert", "jetzt kaufen",
           "nur heute", "jetzt sichern", "schreib mir"],
    "pt": ["clique", "link na bio", "siga", "segue", "marque", "compartilhe", "participe", "compre já",
           "só hoje", "aproveite", "me chama"],
    "it": ["clicca", "link in bio", "seguimi", "segui", "tagga", "condividi", "partecipa", "solo oggi",
           "approfitta", "scrivimi"],
    # Arabic joins "and" to the next word: "ورتويت" is "and retweet".
    "ar": ["اضغط", "الرابط في البايو", "تابع", "تابعني", "رتويت", "ورتويت", "منشن", "ومنشن", "شارك", "وشارك", "سجل الآن"],
    "hi": ["link bio me", "follow karo", "follow kare", "abhi click", "click karo", "share karo"],
}


#: Words that are spam beside a link, an offer or another hint, and ordinary talk alone. Chosen by
#: reading what fired on the ~90k real posts of ../shared/datasets, where hardly any is spam.
SPAM_HINTS: dict[str, list[str]] = {
    "en": ["giveaway", "#giveaway", "freebie", "sweepstakes", "casino", "betting tips", "crypto", "bitcoin", "forex",
           "nft", "token", "presale", "pre-sale", "promo code", "promo codes", "discount code", "discount codes",
           "coupon", "coupons", "cashback", "referral code", "referral codes", "make money", "nudes", "#nsfw", "#porn",
           "easiest money", "work from home", "working from home", "side hustle", "#sidehustle", "#wfh",
           "follow back", "followback", "#followback", "dm now", "dm me for", "click here", "click the link",
           "free streams", "live streams", "watch free", "unlock", "75% off", "90% off", "best deals",
           "free £", "free $", "claim now", "claim your", "first come first served",
           "no credit check", "instant approval", "payday loan", "no human verification", "generator", "replica",
           "today only", "ends midnight", "spots left", "go viral", "going viral",
           "sorted mine", "fixed mine", "recovered mine"],
    "es": ["sorteo", "#sorteo", "haz clic", "código promocional", "cupón", "criptomonedas", "gratis"],
    "fr": ["concours", "#concours", "cliquez ici", "code promo", "gagnez", "gratuit", "cryptomonnaie"],
    "de": ["gewinnspiel", "#gewinnspiel", "verlosung", "hier klicken", "geld verdienen", "gutscheincode",
           "rabattcode", "gratis", "gewinnen"],
    "pt": ["sorteio", "#sorteio", "clique aqui", "cupom", "código promocional", "grátis"],
    "it": ["concorso", "giveaway", "clicca qui", "codice sconto", "gratis", "guadagna"],
    "ar": ["سحب", "مسابقة", "اضغط هنا", "مجانا"],
    "hi": ["jeeto", "muft"],
}


@dataclass
class SpamSignals:
    """The spam score a post's shape earns and the reasons behind each part of it."""

    score: float = 0.0
    reasons: list[str] = field(default_factory=list)
    link_texts: list[str] = field(default_factory=list)  # the links found, as written

    def add(self, amount: float, why: str) -> None:
        """Count one signal."""
        self.score += amount
        self.reasons.append(why)


class SpamReader:
    """Reads the spam signals in a post; one per classifier (the call-to-action table is built once)."""

    def __init__(self, calls_to_action: dict[str, list[str]] | None = None,
                 hints: dict[str, list[str]] | None = None):
        self._cues = TermMatcher({"cta": calls_to_action or CALLS_TO_ACTION, "hint": hints or SPAM_HINTS})

    def read(self, text: str, lang: str | None, brand_handles: frozenset[str] = frozenset(),
             repeats: int = 0, spam_terms: int = 0, words: list[str] | None = None,
             cues: dict[str, list[str]] | None = None) -> SpamSignals:
        """The signals in ``text``: ``repeats`` near-identical posts by other accounts came before it
        (capture counts them), ``spam_terms`` content-library spam terms were found in it, and
        ``brand_handles`` (lower-case, with "@") are the brand's own, never a third party's pitch.
        ``words`` are ``terms.tokens(text)``, and ``cues`` its "cta" and "hint" phrases (matched with
        ``CALLS_TO_ACTION`` and ``SPAM_HINTS``), when the caller has them already.

        Each pattern runs only where a cheap test (a word, a character) says it can match."""
        signals = SpamSignals()
        words = tokens(text) if words is None else words
        vocabulary = set(words)
        low = text.lower()
        links = signals.link_texts = find_links(text)
        body = _LEADING_HANDLES.sub("", text) if text[:1] in "@.Rr" else text  # a reply's addressees
        handles = ([h for h in _HANDLE.findall(body) if h.lower() not in brand_handles] if "@" in body else [])
        money_sign = "£" in text or "$" in text or "€" in text or "euro" in low or "dollar" in low or "pound" in low
        if spam_terms:
            signals.add(TERM_WEIGHT * spam_terms, f"spam terms weigh {TERM_WEIGHT:g} each")
        cues = self._cues.match(text, lang, words) if cues is None else cues
        cta, hints = cues.get("cta", []), cues.get("hint", [])
        if hints:  # a second hint adds less, so hints alone stay under the bar
            signals.add(HINT_WEIGHT + 0.5 * (len(hints) > 1), f"spam hints ({', '.join(repr(t) for t in hints[:3])})")
        engaging = vocabulary & _ENGAGE_WORDS
        contest = (_CONTEST.search(body) if engaging and ("win" in vocabulary or "enter" in vocabulary
                                                         or len(engaging) >= 2) else None)
        if contest:
            signals.add(1.5, f"contest mechanics ({contest.group(0)!r})")
        elif hints and len(cta) >= 2 and not links:
            signals.add(1.0, f"a prize word with calls to action ({', '.join(repr(t) for t in cta[:3])})")
        selling = _SELLING_REACH.search(text) if vocabulary & _REACH_WORDS else None
        if selling:
            signals.add(1.5, f"sells followers or reach ({selling.group(0)!r})")
        prize = _FREE_PRIZE.search(text) if "free" in vocabulary or money_sign else None
        if prize:
            signals.add(0.75, f"a free prize ({prize.group(0)!r})")
        chat = (_CHAT_CONTACT.search(text) if "whatsapp" in low or "telegram" in low or "t.me/" in low
                or "wa.me/" in low or "signal" in low else None)
        if chat:
            signals.add(1.0, f"a contact off the platform ({chat.group(0).strip()!r})")
        contact = ([m for m in _CONTACT_HANDLE.findall(text) if m.split()[-1].lower() not in brand_handles]
                   if "contact" in low or "message" in low or "reach out" in low or "hit up" in low else [])
        if contact:
            signals.add(1.0, f"sends readers to a third party ({contact[0]!r})")
            off = _OFF_PLATFORM.search(text)
            if off:
                signals.add(1.0, f"and off the platform ({off.group(0)!r})")
        if cta and links:
            signals.add(1.0, f"a link with a call to action ({', '.join(repr(t) for t in cta[:3])})")
        elif cta and (handles or "bio" in " ".join(cta)):
            target = "the profile" if "bio" in " ".join(cta) else "an account"
            signals.add(0.5, f"{target} with a call to action ({', '.join(repr(t) for t in cta[:3])})")
        if vocabulary & _DOMAIN_ENDINGS and _OBFUSCATED.search(text):
            signals.add(1.0, "a domain spelt with spaces to dodge link filters")
        affiliate = next((link for link in links if _AFFILIATE.search(link)), None)
        if affiliate:
            signals.add(1.0, f"an affiliate link ({affiliate!r})")
        if len(links) >= 2:  # news bots post two links too: this only tips a post that has a pitch
            signals.add(0.25, f"{len(links)} links")
        hashtags = words.count("#")
        if hashtags >= 6 or (hashtags >= 4 and hashtags / max(1, len(text.split())) >= 0.3):
            signals.add(1.0, f"hashtag stuffing ({hashtags} hashtags)")
        if len(handles) >= 5:
            signals.add(0.5, f"mention stuffing ({len(handles)} accounts)")
        money = _MONEY_CLAIM.search(text) if money_sign else None
        if money:
            signals.add(1.0, f"a money claim ({money.group(0)!r})")
        discount = _DISCOUNT.search(text) if "%" in text else None
        if discount and (links or cta):
            signals.add(0.5, f"a discount pitch ({discount.group(0)!r})")
        hype = 0 if text.isascii() else sum(text.count(mark) for mark in _HYPE)
        if hype >= 3:
            signals.add(0.5, f"{hype} hype emoji")
        # Copies by many accounts are spam when they push a link or an offer; without either, it takes
        # a mass of them, because people do copy one complaint (an outage, a campaign) word for word.
        if (repeats >= 2 and (links or signals.score)) or repeats >= 8:
            signals.add(1.5 + 0.25 * min(repeats, 6), f"near-identical to {repeats} posts by other accounts")
        return signals
