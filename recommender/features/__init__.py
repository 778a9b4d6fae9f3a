"""Feature blocks: TF-IDF text, authors and categories, side by side in one sparse matrix.

- :mod:`.text`: TF-IDF over title and abstract, and the query encoder for search;
- :mod:`.authors`: normalised author names, one column per author with a few papers;
- :mod:`.categories`: the primary category and every listed category;
- :mod:`.embeddings`: an optional sentence-embedding block (the ``embeddings`` extra);
- :mod:`.blocks`: the parameters, and the weighted stack that models and similar papers use.
"""
from recommender.features.authors import AuthorVocabulary, author_key, author_matrix, fit_authors
from recommender.features.blocks import AUTHORS, CATEGORIES, EMBEDDING, TEXT, Block, FeatureParams, Features, block_scale, build_features, \
    similar_weights, stack
from recommender.features.categories import category_matrix, category_names
from recommender.features.text import TOKEN_PATTERN, QueryEncoder, fit_tfidf, paper_text, preprocess, text_vectorizer

__all__ = [
    "AUTHORS", "CATEGORIES", "EMBEDDING", "TEXT", "AuthorVocabulary", "Block", "FeatureParams", "Features", "QueryEncoder",
    "TOKEN_PATTERN", "author_key", "author_matrix", "block_scale", "build_features", "category_matrix",
    "category_names", "fit_authors", "fit_tfidf", "paper_text", "preprocess", "similar_weights", "stack",
    "text_vectorizer",
]
