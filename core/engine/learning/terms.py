"""The content library: terms that mark each type of mention, per language.

The practice comes from Symantec's social team, who tagged mentions as Case, Query, Rant, Rave, Lead
and RFE with libraries of terms ("anyone know" marks a Query, "doesn't work" a Case, "annoyed" a Rant,
"thanks" a Rave). Customers add or replace terms in ``[learning.terms]``.
"""
from __future__ import annotations

import re
from collections import defaultdict

# kind -> language -> terms. "fraud" is not a type: it flags a case for the fraud rule.
DEFAULT_TERMS: dict[str, dict[str, list[str]]] = {
    "case": {
        "en": ["doesn't work", "not working", "stopped working", "won't work", "isn't working", "broken",
               "outage", "is down", "down again", "went down", "no internet", "no signal", "no service",
               "can't connect", "cannot connect", "won't connect", "keeps dropping", "dropping out",
               "disconnecting", "error", "error code", "troubleshoot", "fix this", "please fix", "help me",
               "need help", "still waiting", "been waiting", "overcharged", "charged twice", "double charged",
               "wrong bill", "billing error", "refund", "cancel my", "can't log in", "cannot log in",
               "locked out", "not activated", "won't activate", "hasn't arrived", "never arrived",
               "no one showed up", "engineer", "technician", "ticket", "case number", "dm'd", "dmed",
               "slow speeds", "speeds are", "buffering", "faulty", "crashes", "crashing", "not loading",
               "support", "sort this out", "days without", "hours without",
               "charged", "charged me", "payment failed", "direct debit", "never ordered", "didn't order",
               "no line", "still no", "dropping", "drops out", "keeps dropping", "sim swapped", "sim-swapped",
               "can't receive", "cannot receive", "can't make calls", "not recognised", "wrong address",
               "no subscription", "losing sound", "won't let me", "unusable", "error message", "went wrong",
               "been cut off", "disconnected", "no dial tone", "no connection", "lost connection",
               "can someone check", "can you check", "please check", "dm me", "sent it over", "still broken"],
        "es": ["no funciona", "sin internet", "sin servicio", "sin señal", "no puedo", "avería", "caído",
               "error", "ayuda", "factura", "reembolso", "cobro",
               # outages and cut-off lines said as what is missing, and care that never answers
               "sin fibra", "sin línea", "sin conexión", "no tengo línea", "no tengo internet", "no tengo fibra",
               "me han cortado", "me habéis cortado", "cortado la línea", "llevo una semana", "llevo días",
               "nadie me da fecha", "nadie me responde", "nadie me contesta", "cobrado dos veces", "doble cobro",
               "impago", "con quién hablo"],
        "fr": ["ne fonctionne pas", "ne marche pas", "en panne", "panne", "pas de connexion", "plus d'internet",
               "aidez-moi", "facture", "remboursement", "erreur", "coupure"],
        "de": ["funktioniert nicht", "geht nicht", "kein internet", "störung", "ausfall", "hilfe", "rechnung",
               "fehler", "erstattung", "keine verbindung",
               # billing mistakes, outages counted in days, and a hotline that never helps
               "doppelt abgebucht", "abgebucht", "zweimal abgebucht", "kein netz", "kein empfang", "seit tagen",
               "seit drei tagen", "warteschleife", "aufgelegt", "antwortet nicht", "nicht bestellt",
               "techniker", "termin erst", "kein anschluss"],
        "pt": ["não funciona", "sem internet", "sem sinal", "sem serviço", "ajuda", "fatura", "reembolso",
               "erro", "caiu"],
        "it": ["non funziona", "senza internet", "guasto", "aiuto", "fattura", "rimborso", "errore"],
        "nl": ["werkt niet", "storing", "geen internet", "geen verbinding", "help", "factuur", "terugbetaling"],
    },
    "query": {
        "en": ["anyone know", "anyone knows", "does anyone", "anybody know", "advice", "how do i", "how do you",
               "how can i", "how to", "is it possible", "can i", "can you", "does it", "do you", "is there",
               "what is the", "what's the", "which", "wondering", "question", "quick question", "any idea",
               "any tips", "recommendations", "should i", "will it", "does brightwave", "genuinely asking",
               "what's in", "why is the", "why does", "curious"],
        "es": ["alguien sabe", "cómo puedo", "pregunta", "consejo", "es posible", "se puede"],
        "fr": ["quelqu'un sait", "comment faire", "question", "conseil", "est-ce que", "est-il possible"],
        "de": ["weiß jemand", "wie kann ich", "frage", "ist es möglich", "kann man"],
        "pt": ["alguém sabe", "como faço", "pergunta", "dúvida", "é possível"],
        "it": ["qualcuno sa", "come posso", "domanda", "è possibile"],
        "nl": ["weet iemand", "hoe kan ik", "vraag", "is het mogelijk"],
    },
    "rant": {
        "en": ["angry", "annoyed", "annoying", "furious", "fuming", "livid", "disgusted", "disgraceful",
               "disgrace", "worst", "terrible", "awful", "horrible", "useless", "pathetic", "joke", "ridiculous",
               "rip off", "ripoff", "scammers", "hate", "sick of", "fed up", "never again", "avoid",
               "shame on", "shambles", "clowns", "garbage", "trash", "rubbish", "incompetent", "unacceptable",
               "#fail", "wtf", "switching to", "leaving", "done with", "do better",
               # sarcasm cues: praise words that a lexicon reads as positive
               "love that for me", "thanks for nothing", "just great", "yet again", "as usual", "cheers for nothing",
               "oh great", "wonderful service", "10/10 would not", "cowboys", "black hole", "nobody can tell me",
               "stop ringing", "stop calling", "hold music", "minutes on hold", "hours on hold", "are you even real",
               "no grazie", "every other", "say 'always on'", "shocking", "embarrassing", "disgusting", "lies"],
        "es": ["pésimo", "horrible", "vergüenza", "harto", "harta", "estafa", "lo peor", "nunca más", "odio"],
        "fr": ["nul", "honteux", "lamentable", "marre", "la pire", "le pire", "arnaque", "scandaleux"],
        "de": ["katastrophe", "unverschämt", "frechheit", "schlechteste", "nie wieder", "abzocke", "miserabel",
               "unfassbar", "geht's noch", "eine zumutung", "zum dritten mal"],
        "pt": ["péssimo", "vergonha", "horrível", "lixo", "nunca mais", "palhaçada"],
        "it": ["pessimo", "vergogna", "schifo", "mai più", "ridicolo"],
        "nl": ["belachelijk", "waardeloos", "schandalig", "nooit meer"],
    },
    "rave": {
        "en": ["thanks", "thank you", "thx", "ty", "love", "loving", "awesome", "amazing", "great job",
               "brilliant", "excellent", "fantastic", "best", "kudos", "shout out", "shoutout", "impressed",
               "well done", "superb", "legend", "legends", "recommend brightwave", "highly recommend",
               "so fast", "blazing", "flawless", "appreciate", "grateful", "props", "happy with", "10/10",
               "sorted my", "sorted it", "fair's fair", "credited", "fixed it", "fixed my", "quick fix", "nice one",
               "consistently", "rock solid", "game changer", "can't fault", "no complaints", "pleasantly surprised",
               "hats off", "top notch", "chef's kiss", "❤️", "🙌", "👏"],
        "es": ["gracias", "genial", "excelente", "encanta", "increíble", "recomiendo"],
        "fr": ["merci", "génial", "excellent", "top", "bravo", "super", "je recommande"],
        "de": ["danke", "super", "toll", "klasse", "hervorragend", "empfehlen"],
        "pt": ["obrigado", "obrigada", "ótimo", "excelente", "adoro", "recomendo"],
        "it": ["grazie", "ottimo", "fantastico", "consiglio"],
        "nl": ["bedankt", "dank je", "top", "geweldig", "aanrader"],
    },
    "lead": {
        "en": ["looking for", "thinking of switching", "thinking about switching", "considering", "switch to",
               "sign up", "signing up", "how much", "price", "pricing", "deal", "deals", "quote", "available in",
               "availability", "moving to", "moving house", "new flat", "new house", "need a new",
               "recommend a", "any recommendations", "best provider", "which provider", "worth it", "contract",
               "upgrade", "business plan", "family plan", "sim only", "get fibre", "get fiber",
               "recommendations for", "isp recommendations", "anyone on here with", "is it as good", "2 bed",
               "3 bed", "which is better", "or orbit", "or skyline", "vs", "compare", "comparing", "sign-up offer",
               "black friday deal", "new customer", "switching from", "about to switch", "quote me",
               # buying intent said outright: a prospect's question is a lead before it is a query
               "i'll switch", "will switch", "switch today", "worth switching", "want to switch", "ready to switch",
               "looking to switch", "cheapest", "who should i go with", "who's good", "who is good",
               "who's actually good", "least painful", "want to sign up", "sign me up", "take my money",
               "where do i sign"],
        "es": ["cuánto cuesta", "precio", "contratar", "me cambio", "busco", "tarifa", "oferta", "me mudo",
               "dudo entre", "me cambiaría"],
        "fr": ["combien", "prix", "souscrire", "abonnement", "je cherche", "offre", "changer d'opérateur"],
        "de": ["wie viel", "preis", "vertrag", "abschließen", "suche", "angebot", "wechseln"],
        "pt": ["quanto custa", "preço", "contratar", "procuro", "plano", "oferta", "mudar para", "aderir"],
        "it": ["quanto costa", "prezzo", "abbonamento", "cerco", "offerta"],
        "nl": ["hoeveel kost", "prijs", "abonnement", "overstappen", "aanbieding"],
    },
    "rfe": {
        "en": ["wish", "please add", "would be nice", "would be great", "would love", "feature request",
               "should add", "should have", "should let", "could you add", "can you add", "add an option",
               "add support for", "bring back", "dark mode", "i'd love", "suggestion", "idea:", "why can't i",
               "why can't the", "needs a", "needs an", "missing feature", "let us", "option to",
               "would be amazing", "would be awesome", "would be handy", "would be useful", "can we get",
               "can we please get", "please publish", "please bring", "please make", "should support",
               "a way to", "if brightwave added", "feature", "roadmap", "when will", "any plans"],
        "es": ["ojalá", "deberían añadir", "sería genial", "sugerencia", "podrían añadir"],
        "fr": ["j'aimerais", "ce serait bien", "suggestion", "pourriez-vous ajouter", "il faudrait"],
        "de": ["wäre schön", "wünsche mir", "vorschlag", "bitte fügt", "sollte"],
        "pt": ["seria bom", "deveriam adicionar", "sugestão", "gostaria que"],
        "it": ["sarebbe bello", "suggerimento", "dovreste aggiungere"],
        "nl": ["zou fijn zijn", "suggestie", "graag een optie"],
    },
    "spam": {
        # Phrases that make a post spam on their own. Words that are spam only beside a link or an offer
        # ("giveaway", "casino", "bitcoin", "promo code") are the spam module's hints, not terms here.
        "en": ["free followers", "buy followers", "cheap followers", "real followers", "more followers",
               "get followers", "gain followers", "followers for only", "instant delivery", "no password needed",
               "dm for promo", "win a free", "claim your free", "claim your prize", "claim your reward", "rt to win",
               "retweet to win", "follow and retweet", "follow & retweet", "follow + retweet", "follow and rt",
               "follow & rt", "follow + rt", "follow + repost", "rt and follow", "rt + follow", "like and retweet",
               "f4f", "follow for follow", "follow4follow", "teamfollowback", "free iphone", "100% free", "onlyfans",
               "link in bio", "link in my bio", "check my bio", "details in bio", "ask me how", "one trick",
               "passive income", "guaranteed profit", "guaranteed returns", "double your money", "double your bitcoin",
               "1000x", "airdrop", "presale is live", "crypto signals", "forex signals",
               "investment platform", "she's legit", "he's legit", "helped me recover", "recovered my account",
               "hot singles", "sexy singles", "18+ only", "cam girls", "verified deals",
               "staff discount codes", "leaked discount", "exclusive partner links", "welcome bonus",
               "limited offer", "limited time offer"],
        "es": ["gana dinero", "seguidores gratis", "comprar seguidores", "sigue esta cuenta", "gana un",
               "ingresos pasivos", "enlace en mi perfil", "link en mi perfil", "participa y gana"],
        "fr": ["abonnés gratuits", "gagnez un", "tente ta chance", "lien dans ma bio", "revenus passifs",
               "concours gratuit"],
        "de": ["kostenlose follower", "follower kaufen", "gewinne ein", "link in der bio", "passives einkommen",
               "jetzt gewinnen"],
        "pt": ["seguidores grátis", "ganhe dinheiro", "ganhe um", "link na bio", "renda passiva", "comprar seguidores"],
        "it": ["follower gratis", "vinci un", "guadagna soldi", "link in bio", "rendita passiva"],
        "ar": ["متابعين مجانا", "زيادة متابعين", "اربح", "الرابط في البايو"],
        "hi": ["free followers pao", "paise kamao", "ghar baithe kamaye"],
    },
    "news": {
        "en": ["announces", "announced", "announcement", "press release", "reports", "reported", "according to",
               "breaking", "acquires", "acquisition", "merger", "quarterly", "q1", "q2", "q3", "q4", "earnings",
               "revenue", "shares", "stock", "ceo", "investors", "regulator", "ofcom", "fcc", "launches",
               "unveils", "rolls out", "expands", "partnership", "subscribers", "analysts", "fined",
               "headline", "report:", "via @",
               # reported speech and the outlet's phrasing
               "confirms", "confirmed", "the company says", "the company said", "the company warns", "says it",
               "said it", "sources say", "told reporters", "in a statement", "more to follow", "thousands of",
               "millions of", "customers across", "is now live", "now live in", "now shipping", "to announce",
               "teardown", "post-mortem", "hands-on", "review :", "steps down", "investigates", "ombudsman",
               "figures show", "per cent", "year-on-year"],
        "es": ["anuncia", "según", "informa", "resultados", "adquiere", "lanza", "llega a", "la operadora",
               "la compañía", "ha anunciado", "comunicado"],
        "fr": ["annonce", "selon", "résultats", "rachète", "communiqué", "lance", "l'opérateur", "arrive en",
               "a annoncé"],
        "de": ["kündigt an", "laut", "quartal", "übernimmt", "meldet", "startet", "der anbieter", "teilte mit",
               "bekannt gegeben"],
        "pt": ["anuncia", "segundo", "resultados", "adquire", "chega a", "a operadora", "lança", "anunciou"],
        "it": ["annuncia", "secondo", "risultati", "acquisisce", "arriva in", "l'operatore", "lancia", "ha annunciato"],
        "nl": ["kondigt aan", "volgens", "resultaten", "neemt over", "voert", "maakt bekend"],
        "ar": ["أعلنت", "أعلن", "وفقا", "بحسب", "عاجل"],
    },
    "fraud": {
        "en": ["scam", "scammed", "phishing", "fraud", "fraudulent", "unauthorized charge", "unauthorised charge",
               "charges i didn't make", "didn't authorize", "didn't authorise", "stolen", "identity theft",
               "hacked", "account takeover", "sim swap", "sim-swap", "ported my number", "fake text",
               "fake email", "fake website", "impersonating", "pretending to be"],
        "es": ["estafa", "fraude", "suplantación", "me robaron", "hackeado", "duplicado de sim",
               "duplicado de la sim", "sin mi permiso", "vaciado la cuenta"],
        "fr": ["arnaque", "fraude", "hameçonnage", "piraté", "usurpation"],
        "de": ["betrug", "phishing", "gehackt", "betrüger"],
        "pt": ["golpe", "fraude", "clonaram", "hackeado"],
        "it": ["truffa", "frode", "hackerato"],
        "nl": ["oplichting", "fraude", "gehackt"],
    },
}


def merge_terms(custom: dict[str, dict[str, list[str]]], use_defaults: bool = True) -> dict[str, dict[str, list[str]]]:
    """The defaults (unless turned off) with the customer's terms added, kind by kind and language by language."""
    merged: dict[str, dict[str, list[str]]] = defaultdict(dict)
    if use_defaults:
        for kind, by_lang in DEFAULT_TERMS.items():
            for lang, terms in by_lang.items():
                merged[kind][lang] = list(terms)
    for kind, by_lang in custom.items():
        for lang, terms in by_lang.items():
            merged[kind].setdefault(lang, [])
            merged[kind][lang].extend(t for t in terms if t not in merged[kind][lang])
    return dict(merged)


def normalise(text: str) -> str:
    """Lower-case and straighten curly apostrophes, the form terms are matched in."""
    return text.lower().replace("\u2019", "'").replace("\u2018", "'")


# Words (with inner apostrophes: "doesn't") and single punctuation marks ("#", "@", ":", "/", "$").
_TOKEN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


def tokens(text: str) -> list[str]:
    """The tokens terms are matched on: the same tokenizer reads terms and text, so "#fail", "10/10" and
    "idea:" match wherever their tokens stand in a row."""
    return _TOKEN.findall(normalise(text))


class TermMatcher:
    """Finds content-library terms in text, per language.

    Terms are looked up as runs of tokens in a dict rather than with one large regular expression: an
    alternation of hundreds of phrases is tried at every character, while a dict lookup per token
    (and only where a term can start) costs a few microseconds a mention. At each position the longest
    term wins and matching resumes after it, so "would love" (a feature request) is not also "love".
    """

    def __init__(self, terms: dict[str, dict[str, list[str]]]):
        by_lang: dict[str, dict[tuple[str, ...], set[str]]] = defaultdict(lambda: defaultdict(set))
        for kind, per_lang in terms.items():
            for lang, words in per_lang.items():
                for word in words:
                    key = tuple(tokens(word))
                    if not key:
                        continue
                    by_lang[lang][key].add(kind)
                    squashed = tuple(t.replace("'", "") for t in key)
                    if squashed != key:  # "doesn't" also matches "doesnt"
                        by_lang[lang][squashed].add(kind)
        self.languages = frozenset(by_lang)
        self._by_lang = {lang: {k: frozenset(v) for k, v in table.items()} for lang, table in by_lang.items()}
        self._tables: dict[str, tuple[dict[tuple[str, ...], frozenset[str]], frozenset[str], int]] = {}

    def _table(self, lang: str):
        """English terms plus the language's own, and for each first token the term lengths, longest first."""
        cached = self._tables.get(lang)
        if cached is None:
            table = dict(self._by_lang.get("en", {}))
            if lang != "en":
                for key, kinds in self._by_lang.get(lang, {}).items():
                    table[key] = table.get(key, frozenset()) | kinds
            lengths: dict[str, set[int]] = defaultdict(set)
            for key in table:
                lengths[key[0]].add(len(key))
            starts = {token: tuple(sorted(ns, reverse=True)) for token, ns in lengths.items()}
            cached = self._tables[lang] = (table, starts)
        return cached

    def match(self, text: str, lang: str | None, words: list[str] | None = None) -> dict[str, list[str]]:
        """kind -> the terms found, in English and in the text's own language (``words``: the text's
        ``tokens``, when the caller has them already)."""
        table, starts = self._table(lang if lang in self.languages else "en")
        words = tokens(text) if words is None else words
        found: dict[str, list[str]] = {}
        i, count = 0, len(words)
        while i < count:
            lengths = starts.get(words[i])
            if lengths is None:
                i += 1
                continue
            for n in lengths:
                if i + n > count:
                    continue
                key = tuple(words[i:i + n])
                kinds = table.get(key)
                if kinds:
                    term = " ".join(key)
                    for kind in kinds:
                        hits = found.setdefault(kind, [])
                        if term not in hits:
                            hits.append(term)
                    i += n
                    break
            else:
                i += 1
        return found
