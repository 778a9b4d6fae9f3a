"""Every setting Paperfeed reads, declared once with its help text.

Precedence, lowest first: the default here, the environment variable, an
explicit override (a CLI flag or the web app's config). Paths are made absolute
when the settings are built, so nothing later depends on the working directory.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    default: object
    help: str
    choices: tuple = ()  # allowed values, when the setting is one of a few words
    minimum: float = 0  # the smallest allowed value of a number

    @property
    def env(self) -> str:
        return "PAPERFEED_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("data_dir", "./data", "Directory for the paper store and the user database."),
    Setting("models_dir", "./models", "Directory for artifacts the batch jobs write (features, user models)."),
    Setting("max_features", 200000, "TF-IDF vocabulary size (unigrams and bigrams)."),
    Setting("vocabulary_sample", 200000, "`compute` fits the TF-IDF vocabulary on at most this many papers (a seeded sample by text hash; every paper counts for the idf). Bounds memory at any corpus size; 0 fits on every paper.", minimum=0),
    Setting("min_df", 2, "A term must occur in at least this many papers to enter the vocabulary."),
    Setting("max_df", 0.5, "Terms in more than this fraction of papers are dropped as uninformative."),
    Setting("title_repeat", 2, "How many times the title is counted in a paper's text (titles carry the key terms)."),
    Setting("author_weight", 1.0, "Weight of the author block beside the text block (0 leaves authors out)."),
    Setting("author_min_papers", 2, "An author gets a feature column once they have this many papers."),
    Setting("author_names", "full", "How author names are normalised: `full` (every name part) or `initials` (first initial and last name).",
            choices=("full", "initials")),
    Setting("category_weight", 0.3, "Weight of the category block (primary and listed categories; 0 leaves it out)."),
    Setting("embedding_weight", 0.0, "Weight of the optional sentence-embedding block (needs the `embeddings` extra; 0 leaves it out)."),
    Setting("similar_author_weight", 1.0, "Weight of shared authors in similar papers."),
    Setting("similar_category_weight", 0.3, "Weight of shared categories in similar papers."),
    Setting("svm_c", 0.01, "Regularisation C of the per-user LinearSVC."),
    Setting("max_negatives", 8000, "Negatives sampled per user model, bounding training cost."),
    Setting("keep_recommendations", 1000, "Ranked recommendations saved per user and tag by `train`."),
    Setting("model_max_weights", 8000, "Weights kept per user model (the largest by size; float16, under 64 KB per tag with its saved ranking). 0 keeps every weight (dense, about 1 MB per tag)."),
    Setting("train_window_days", 365, "`train` saves each model's ranking over the papers of this many recent days only, so its cost does not grow with the corpus (0: every paper). Feeds reaching further back rank on request."),
    Setting("n_jobs", 2, "Threads `train` uses to fit several users at once, and one user's retrain uses for that user's models (joblib); processes `compute` transforms chunks of papers on."),
    Setting("dask_scheduler", "", "Address of a Dask scheduler (`tcp://host:8786`) `train` fits users on; empty trains in this process (needs the `dask` extra; `train --scheduler` overrides it)."),
    Setting("dask_timeout", 10.0, "Seconds `train --scheduler` waits to reach the Dask scheduler before it gives up with an error.", minimum=1),
    Setting("retrain_workers", 2, "Background threads the web app retrains users on after a tag change (one user at a time each).", minimum=1),
    Setting("retrain_batch", 4, "Most models one background retrain fits before the user goes to the back of the queue (a cost bound per turn).", minimum=1),
    Setting("max_tags", 50, "Tags one user may have (each tag is a model: this bounds a user's model size and retrain cost).", minimum=1),
    Setting("max_papers_per_tag", 5000, "Papers one tag may hold.", minimum=1),
    Setting("max_not_interested", 10000, "Papers one user may mark \"not interested\"."),
    Setting("max_api_tokens", 20, "API tokens one user may hold at once, and (counted apart) private Atom feeds.", minimum=1),
    Setting("popular_min_users", 2, "Different readers who must have tagged a paper in the window before the Popular feed shows it (at least 2, so no one reader's tags are ever revealed).", minimum=2),
    Setting("seen_retention_days", 365, "Days a record that a user was shown or opened a paper is kept (then the paper counts as unseen again); pruned at the start of each visit and by `train`.", minimum=1),
    Setting("session_idle_days", 14.0, "A login session ends after this many days without a request."),
    Setting("session_max_days", 30.0, "A login session ends this many days after login, however active."),
    Setting("fetch_delay", 3.0, "Seconds between two arXiv API requests (arXiv asks for at least 3)."),
    Setting("fetch_timeout", 30.0, "Timeout in seconds for each arXiv API HTTP request."),
    Setting("fetch_retries", 4, "Retries with exponential backoff for a failed arXiv API request."),
    Setting("arxiv_api_url", "https://export.arxiv.org/api/query", "The arXiv API endpoint `fetch` and the web app's \"fetch from arXiv\" query (tests point it at a local server)."),
    Setting("oai_base_url", "https://oaipmh.arxiv.org/oai", "The arXiv OAI-PMH endpoint `paperfeed harvest` pages through (arXiv has moved it before; tests point it at a local server)."),
    Setting("import_max_bytes", 16 * 2**20, "Largest library file `paperfeed library import` and the web upload take, in bytes (16 MiB: a 5,000-paper export with abstracts is about 10 MiB).", minimum=1024),
    Setting("import_max_entries", 5000, "Most entries (references or id lines) one library import takes.", minimum=1),
    Setting("import_web_fetch", 100, "Most missing papers one web import fetches from arXiv while the page waits (one API request per 100); the rest are listed to import again later or with the CLI."),
    Setting("public_url", "", "The site's address as its users reach it (e.g. `https://paperfeed.example.org`): every link in a digest email starts with it. `paperfeed digest` needs it to send."),
    Setting("smtp_host", "", "SMTP server the digest is sent through (empty: no email; `paperfeed digest --dry-run` still works)."),
    Setting("smtp_port", 587, "SMTP port (587 for `starttls`, 465 for `ssl`, 25 for `none`).", minimum=1),
    Setting("smtp_user", "", "SMTP login name (empty: no login)."),
    Setting("smtp_password", "", "SMTP password. Prefer the instance config file (mode 600) to the environment."),
    Setting("smtp_from", "", "The digest's From address, e.g. `Paperfeed <digest@example.org>`."),
    Setting("smtp_tls", "starttls", "How the SMTP connection is protected: `starttls`, `ssl` (implicit TLS) or `none` (loopback or a trusted relay only).",
            choices=("starttls", "ssl", "none")),
    Setting("smtp_timeout", 30.0, "Seconds before an SMTP connection or command times out (the digest then retries that user on its next run).", minimum=1),
    Setting("secret_key", "", "Flask secret key. Required when serving in production; dev mode stores one in the instance folder."),
)

CONFIG_ENV = "PAPERFEED_CONFIG"
CONFIG_FILE = "instance/paperfeed.toml"  # under the data directory

_BY_NAME = {s.name: s for s in SETTINGS}


def default(name: str):
    """The default of one setting: the one place defaults live (parameter classes read them here)."""
    return _BY_NAME[name].default


@dataclasses.dataclass(frozen=True)
class Settings:
    """Resolved settings. Build with :func:`load_settings`."""

    data_dir: Path
    models_dir: Path
    max_features: int
    vocabulary_sample: int
    min_df: int
    max_df: float
    title_repeat: int
    author_weight: float
    author_min_papers: int
    author_names: str
    category_weight: float
    embedding_weight: float
    similar_author_weight: float
    similar_category_weight: float
    svm_c: float
    max_negatives: int
    keep_recommendations: int
    model_max_weights: int
    train_window_days: int
    n_jobs: int
    dask_scheduler: str
    dask_timeout: float
    retrain_workers: int
    retrain_batch: int
    max_tags: int
    max_papers_per_tag: int
    max_not_interested: int
    max_api_tokens: int
    popular_min_users: int
    seen_retention_days: int
    session_idle_days: float
    session_max_days: float
    fetch_delay: float
    fetch_timeout: float
    fetch_retries: int
    arxiv_api_url: str
    oai_base_url: str
    import_max_bytes: int
    import_max_entries: int
    import_web_fetch: int
    public_url: str
    smtp_host: str
    smtp_port: int
    smtp_user: str
    smtp_password: str
    smtp_from: str
    smtp_tls: str
    smtp_timeout: float
    secret_key: str
    config_file: Path | None = None  # the instance config file that was read, if any

    @property
    def limits(self) -> "Limits":
        from recommender.accounts.users import Limits  # the store enforces them; settings only carry the numbers
        return Limits(self.max_tags, self.max_papers_per_tag, self.max_not_interested, self.max_api_tokens,
                      self.session_idle_days * 86400, self.session_max_days * 86400,
                      self.seen_retention_days * 86400)

    @property
    def papers_path(self) -> Path:
        return self.data_dir / "papers.sqlite"

    @property
    def users_path(self) -> Path:
        return self.data_dir / "users.sqlite"


def _coerce(setting: Setting, value):
    kind = type(setting.default)
    try:
        value = kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"setting {setting.name} ({setting.env}) must be {kind.__name__}, got {value!r}") from None
    if setting.choices and value not in setting.choices:
        raise ValueError(f"setting {setting.name} ({setting.env}) must be one of {', '.join(setting.choices)}, "
                         f"got {value!r}")
    if kind in (int, float) and value < setting.minimum:
        raise ValueError(f"setting {setting.name} ({setting.env}) must be at least {setting.minimum:g}, got {value!r}")
    return value


def config_path(environ, data_dir) -> Path:
    """The instance config file: ``$PAPERFEED_CONFIG``, else ``<data_dir>/instance/paperfeed.toml``."""
    explicit = environ.get(CONFIG_ENV)
    return Path(explicit).expanduser() if explicit else Path(data_dir).expanduser() / CONFIG_FILE


def read_config(path: Path, explicit: bool) -> dict:
    """The settings in a TOML file (``smtp_host = "mail.example.org"``): names as in the settings table,
    lower case. A missing default file is no settings; a missing explicit one, a syntax error or an
    unknown name is a ``ValueError`` that names the file."""
    import tomllib
    try:
        with open(path, "rb") as handle:
            table = tomllib.load(handle)
    except FileNotFoundError:
        if explicit:
            raise ValueError(f"{CONFIG_ENV} names {path}, which does not exist") from None
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config file {path}: {exc}") from None
    unknown = sorted(set(table) - set(_BY_NAME) - {"data_dir"})
    if unknown:
        raise ValueError(f"config file {path}: unknown settings: {', '.join(unknown)} "
                         "(names as in the README's settings table, lower case)")
    if "data_dir" in table:
        raise ValueError(f"config file {path}: data_dir cannot be set here (the file is found through it)")
    return table


def load_settings(environ=None, **overrides) -> Settings:
    """Resolve settings from defaults, the instance config file, the environment and explicit overrides.

    ``None`` overrides are ignored, so CLI flags can be passed straight through.
    An unknown override name raises ``ValueError``. The config file (:func:`config_path`) is read
    only when ``environ`` is the process environment or names one with ``PAPERFEED_CONFIG``.
    """
    real_env = environ is None
    environ = os.environ if environ is None else environ
    unknown = set(overrides) - set(_BY_NAME)
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
    data_dir = overrides.get("data_dir") or environ.get("PAPERFEED_DATA_DIR", default("data_dir"))
    path, from_file = None, {}
    if real_env or CONFIG_ENV in environ:
        path = config_path(environ, data_dir)
        from_file = read_config(path, CONFIG_ENV in environ)
        path = path.resolve() if from_file else None
    values = {}
    for s in SETTINGS:
        raw = overrides.get(s.name)
        if raw is None:
            raw = environ.get(s.env, from_file.get(s.name, s.default))
        values[s.name] = _coerce(s, raw)
    if not values["arxiv_api_url"].startswith(("https://", "http://")):
        raise ValueError(f"setting arxiv_api_url (PAPERFEED_ARXIV_API_URL) must be an http(s) URL, "
                         f"got {values['arxiv_api_url']!r}")
    if not values["oai_base_url"].startswith(("https://", "http://")):
        raise ValueError(f"setting oai_base_url (PAPERFEED_OAI_BASE_URL) must be an http(s) URL, "
                         f"got {values['oai_base_url']!r}")
    if values["public_url"] and not values["public_url"].startswith(("https://", "http://")):
        raise ValueError(f"setting public_url (PAPERFEED_PUBLIC_URL) must be an http(s) URL, "
                         f"got {values['public_url']!r}")
    values["public_url"] = values["public_url"].rstrip("/")
    for key in ("data_dir", "models_dir"):
        values[key] = Path(values[key]).expanduser().resolve()
    return Settings(**values, config_file=path)
