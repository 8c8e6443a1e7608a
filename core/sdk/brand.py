"""The brand socialcrm listens for: its name, handles, keywords and competitors."""
from __future__ import annotations

import re
from dataclasses import dataclass, field


def _alternation(terms: list[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern matching any of ``terms`` as whole words or handles."""
    cleaned = sorted({t.strip().lower() for t in terms if t and t.strip()}, key=len, reverse=True)
    if not cleaned:
        return None
    body = "|".join(re.escape(t) for t in cleaned)
    # (?<![\w@#]) keeps "@brightwavehelp" from matching inside "@notbrightwavehelp".
    return re.compile(rf"(?<![\w@]){body}(?!\w)", re.IGNORECASE)


@dataclass
class Brand:
    """The brand's identity as the config gives it; used to tell reactive, proactive and
    progressive mentions apart (addressed to the brand, about it, or about a competitor)."""

    name: str
    handles: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    competitors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        handles = [h if h.startswith("@") else "@" + h for h in self.handles]
        self._handles = _alternation(handles)
        self._keywords = _alternation([self.name, *self.keywords, *(h.lstrip("@") for h in self.handles)])
        self._competitors = _alternation(self.competitors)

    def addressed_in(self, text: str) -> str | None:
        """The brand handle the text addresses, if any."""
        match = self._handles.search(text) if self._handles else None
        return match.group(0) if match else None

    def named_in(self, text: str) -> str | None:
        """The brand name or keyword the text uses, if any."""
        match = self._keywords.search(text) if self._keywords else None
        return match.group(0) if match else None

    def competitor_in(self, text: str) -> str | None:
        """The competitor the text names, if any."""
        match = self._competitors.search(text) if self._competitors else None
        return match.group(0) if match else None
