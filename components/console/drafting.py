"""What the console puts beside a conversation: a draft reply for the counsellor to edit, and articles.

The draft for a conversation that screened urgent is the fixed, human-written crisis reply, never
model text, as everywhere an urgent message is answered; otherwise it is the served model's answer
to the asker's messages so far, dropped if the output check says it encourages harm. Articles are
the crawled corpus's best BM25 matches (components/console/retrieval.py), with their URLs.
"""

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from components.console.retrieval import ArticleIndex
from components.screening import Screening, crisis_reply

if TYPE_CHECKING:  # the model's libraries load in the service's worker, not where routes are declared
    from components.serving.answering import Answerer

ARTICLES_SHOWN = 5


async def draft_reply(answerer: "Answerer", conversation: dict[str, Any], articles: ArticleIndex) -> dict[str, Any]:
    """`{text, source, articles}`: source is model, crisis_reply, withheld or none (nothing to answer)."""
    asked = [
        message["text"] for message in conversation["messages"] if message["author"] == "asker" and message["text"]
    ]
    if not asked:
        return {"text": "", "source": "none", "articles": []}
    found = [asdict(article) for article in articles.search("\n".join(asked), ARTICLES_SHOWN)]
    language = conversation["language"]
    if conversation["level"] == "urgent":
        screening = Screening(True, "urgent", tuple(conversation["categories"]), ())
        reply = crisis_reply(screening, answerer.config.region, language, case_opened=True)
        return {"text": reply.text if reply else "", "source": "crisis_reply", "articles": found}
    text = await answerer.draft(asked[0], "\n".join(asked[1:]), language)
    if text is None:
        return {"text": "", "source": "withheld", "articles": found}
    return {"text": text, "source": "model", "articles": found}
