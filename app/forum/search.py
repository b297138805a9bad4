"""Search: what people type finds what they wrote, best matches first.

PostgreSQL (indexes from the migrations, see d2b4c6e8f0a1):
- full-text search with English stemming, ``to_tsvector('english', ...)``:
  ``deployments`` finds "Deploying"; ranked by ``ts_rank``;
- OR every word as a substring (``ILIKE '%word%'``, served by pg_trgm GIN indexes):
  finds CJK words inside a sentence (``数据库``), which the full-text parser keeps as
  one long token, and parts of words; ranked by trigram ``word_similarity``.

SQLite: every word as a case-insensitive substring (``LIKE``, ASCII case folding
only), each word first reduced to its English stem (Snowball), so ``deployments``
also finds "Deploying"; no relevance score beyond title-before-body.

On both, a topic whose title matches ranks above posts that only mention the words
(its opening post is the hit), then by relevance, then newest first.
"""
from __future__ import annotations

from functools import lru_cache

from sqlalchemy import and_, false, func, literal, or_, select, union_all

from .extensions import db
from .models import Post, Topic

MAX_TERMS = 10
TITLE_BOOST = 1.0  # above any ts_rank + word_similarity of a body


@lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("english")


def terms_of(q: str) -> list[str]:
    return [t for t in q.split() if t][:MAX_TERMS]


def _like_escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _substrings(column, terms: list[str]):
    """Every word a substring; ``-word`` must not be one (as in web search syntax);
    quotes are dropped and ``or`` means nothing here (the full-text query reads both)."""
    conditions = []
    for term in terms:
        negate = term.startswith("-") and len(term) > 1
        term = term.lstrip("-") if negate else term
        term = term.strip('"')
        if not term or term.lower() == "or":
            continue
        like = column.ilike(f"%{_like_escape(term)}%", escape="\\")
        conditions.append(~like if negate else like)
    return and_(*conditions) if conditions else false()


def _sqlite_terms(terms: list[str]) -> list[str]:
    """Each word's English stem when it is a prefix of the word (``deploying`` ->
    ``deploy``; ``happily`` -> ``happili`` is not, the word stays)."""
    out = []
    for term in terms:
        neg = "-" if term.startswith("-") and len(term) > 1 else ""
        word = term[len(neg):].strip('"')
        stem = _stemmer().stemWord(word.lower())
        out.append(neg + (stem if len(stem) >= 3 and word.lower().startswith(stem) else word))
    return out


def match_and_score(column, q: str):
    """(predicate, relevance) of ``column`` against the query ``q``."""
    terms = terms_of(q) or [q]
    if db.engine.dialect.name == "postgresql":
        vector = func.to_tsvector("english", column)
        query = func.websearch_to_tsquery("english", q)
        # A query of only negations and stop words ("here -nothing": "here" is an
        # English stop word) would match every row not containing them: ignore it.
        indexable = func.querytree(query).notin_(["T", ""])
        predicate = or_(and_(vector.op("@@")(query), indexable), _substrings(column, terms))
        score = func.ts_rank(vector, query) + func.word_similarity(q, column)
        return predicate, score
    return _substrings(column, _sqlite_terms(terms)), literal(0.0)


def search_hits(q: str, offset: int, limit: int) -> list[int]:
    """Ids of the posts matching ``q``, best first: posts whose body matches, and the
    opening post of each topic whose title matches."""
    needed = offset + limit
    body_match, body_score = match_and_score(Post.body, q)
    body_hits = (
        select(Post.id.label("id"), body_score.label("score"))
        .join(Topic, Post.topic_id == Topic.id)
        .where(body_match, Post.is_deleted == false(), Topic.is_deleted == false())
        .order_by(body_score.desc(), Post.id.desc())
        .limit(needed)
    )
    title_match, title_score = match_and_score(Topic.title, q)
    opening_post_id = func.min(Post.id)
    title_hits = (
        select(opening_post_id.label("id"), (literal(TITLE_BOOST) + title_score).label("score"))
        .join(Topic, Post.topic_id == Topic.id)
        .where(title_match, Topic.is_deleted == false(), Post.is_deleted == false())
        .group_by(Post.topic_id, Topic.title)
        .order_by((literal(TITLE_BOOST) + title_score).desc(), opening_post_id.desc())
        .limit(needed)
    )
    # Each branch stops at the rows this page needs; a post found by both adds up.
    hits = union_all(body_hits.subquery().select(), title_hits.subquery().select()).subquery()
    total = func.sum(hits.c.score)
    stmt = (
        select(hits.c.id)
        .group_by(hits.c.id)
        .order_by(total.desc(), hits.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(db.session.scalars(stmt))
