"""The fixed reply that leads every answer to an urgent message: get help now, and from whom.

It is written by people, never generated, and is in the user's language. Services come
from a per-region directory (`crisis_resources.yaml` ships defaults for the US, UK,
Australia and mainland China, plus a worldwide fallback); deployments load their own.
"""

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from components.errors import PsyllmError
from components.screening.screener import Screening

ReplyLanguage = Literal["en", "zh"]
REPLY_LANGUAGES: tuple[ReplyLanguage, ...] = ("en", "zh")
DEFAULT_DIRECTORY = Path(__file__).with_name("crisis_resources.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CrisisService(_Strict):
    """One helpline: its name in each reply language, how to reach it, and where to read more."""

    names: dict[ReplyLanguage, str]
    phone: str | None
    text: str | None
    url: str

    @model_validator(mode="after")
    def _named_in_every_language(self) -> "CrisisService":
        missing = set(REPLY_LANGUAGES) - set(self.names)
        if missing:
            raise ValueError(f"names needs every reply language; missing {sorted(missing)}")
        return self


class Region(_Strict):
    """A region's emergency number and crisis services."""

    names: dict[ReplyLanguage, str]
    aliases: list[str] = []
    emergency: dict[ReplyLanguage, str]
    resources: list[CrisisService]


class CrisisDirectory(_Strict):
    """All regions, and the one used for a region not listed."""

    fallback: str
    regions: dict[str, Region]

    @model_validator(mode="after")
    def _usable(self) -> "CrisisDirectory":
        if self.fallback not in self.regions:
            raise ValueError(f"fallback {self.fallback!r} is not one of the regions")
        for code, region in self.regions.items():
            if code != self.fallback and not any(service.phone for service in region.resources):
                raise ValueError(f"region {code} lists no service with a phone number")
        return self

    def region(self, code: str | None) -> tuple[str, Region]:
        """The region for a code or alias (any case), else the fallback."""
        wanted = (code or "").strip().upper()
        for name, region in self.regions.items():
            if wanted == name or wanted in (alias.upper() for alias in region.aliases):
                return name, region
        return self.fallback, self.regions[self.fallback]


def load_directory(path: Path) -> CrisisDirectory:
    """Read and validate a crisis-resource file; problems name the file and field."""
    try:
        raw = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        return CrisisDirectory.model_validate(raw)
    except FileNotFoundError as missing:
        raise PsyllmError(f"{path}: crisis resource file not found") from missing
    except YAMLError as bad:
        raise PsyllmError(f"{path}: not valid YAML: {bad}") from bad
    except ValidationError as invalid:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'top level'}: {problem['msg']}"
            for problem in invalid.errors()
        )
        raise PsyllmError(f"{path}: invalid crisis resources: {problems}") from invalid


@cache
def default_directory() -> CrisisDirectory:
    return load_directory(DEFAULT_DIRECTORY)


@dataclass(frozen=True)
class CrisisReply:
    """The reply text plus the services it lists, for pages that render them as links."""

    text: str
    region: str
    language: ReplyLanguage
    services: tuple[CrisisService, ...]


_OPENING = {
    "en": {
        "urgent": (
            "It sounds like you, or someone you care about, may be in danger or in a great deal of pain "
            "right now. Please reach a person now: you do not have to handle this alone."
        ),
        "elevated": (
            "Thank you for sharing something this hard. If things get worse, or you ever feel unsafe, "
            "people are ready to talk at any hour."
        ),
    },
    "zh": {
        "urgent": (
            "听起来你或你关心的人现在可能处在危险中，或者正承受着很大的痛苦。请现在就联系能帮助你的人，你不必独自面对。"
        ),
        "elevated": "谢谢你愿意说出这么难的事。如果情况变得更糟，或者你觉得不安全，随时都有人愿意倾听和帮助你。",
    },
}
_EMERGENCY = {
    "en": "If anyone's life is in danger now, call {emergency} or go to the nearest emergency department.",
    "zh": "如果有人的生命正处于危险之中，请立即拨打 {emergency}，或前往最近的医院急诊。",
}
_CASE_OPENED = {
    "en": "A counsellor has been told about your message and will look at it as soon as they can.",
    "zh": "我们已经通知了一位心理咨询师，他们会尽快查看你的消息。",
}
_SERVICES = {"en": "You can reach trained people at any time:", "zh": "你可以随时联系这些专业的求助渠道："}
_CLOSING = {
    "en": "This service is not an emergency service, and an automated answer is no substitute for a person.",
    "zh": "本服务不是紧急救助服务，自动生成的回答也不能代替真人的帮助。",
}
_CONTACT = {
    "en": {"phone": "call {value}", "text": "text {value}"},
    "zh": {"phone": "电话 {value}", "text": "短信 {value}"},
}


def _service_line(service: CrisisService, language: ReplyLanguage) -> str:
    ways = [
        _CONTACT[language][way].format(value=value) for way in ("phone", "text") if (value := getattr(service, way))
    ]
    separator = "；" if language == "zh" else "; "
    contact = separator.join([*ways, service.url])
    return f"- {service.names[language]}: {contact}" if language == "en" else f"- {service.names[language]}：{contact}"


def reply_language(language: str | None) -> ReplyLanguage:
    """Chinese for any zh tag (zh, zh-CN, zh-Hant...), English otherwise."""
    return "zh" if (language or "").lower().startswith("zh") else "en"


def crisis_reply(
    screening: Screening,
    region: str | None,
    language: str | None,
    directory: CrisisDirectory | None = None,
    case_opened: bool = False,
) -> CrisisReply | None:
    """The fixed reply for an urgent (or, gentler, an elevated) screening; None when there is no risk.

    `case_opened` says a counsellor was told (a case is in their queue); the reply promises that
    only then, so no one waits for a person who was never asked to come.
    """
    if screening.level == "none":
        return None
    chosen = reply_language(language)
    code, place = (directory or default_directory()).region(region)
    lines = [_OPENING[chosen][screening.level]]
    if screening.level == "urgent":
        lines.append(_EMERGENCY[chosen].format(emergency=place.emergency[chosen]))
    if case_opened:
        lines.append(_CASE_OPENED[chosen])
    lines += [_SERVICES[chosen], *(_service_line(service, chosen) for service in place.resources), _CLOSING[chosen]]
    return CrisisReply("\n".join(lines), code, chosen, tuple(place.resources))
