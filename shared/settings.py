"""Settings for every service, from the environment (prefix ``EHC_``, nested with ``__``).

Examples: ``EHC_KAFKA__BOOTSTRAP_SERVERS=broker:9092``, ``EHC_DATABASE_URL=postgresql+asyncpg://...``,
``EHC_NOTIFIER__SMTP_HOST=mail``. A ``.env`` file in the working directory is read too.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "EHC_"
ENVIRONMENTS = ("local", "test", "staging", "production")


class SettingsError(ValueError):
    """Settings a service cannot start with; the message is one line naming the setting (never a secret)."""


class KafkaSettings(BaseModel):
    bootstrap_servers: str = Field(default="127.0.0.1:9092", description="Comma-separated host:port list.")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = Field(default=None, description="CA bundle for a managed Kafka's TLS.")
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    topic_prefix: str = Field(default="", description="Prefix for every topic name (shared clusters, tests).")
    group_prefix: str = Field(default="", description="Prefix for every consumer group id.")
    partitions: int = Field(default=6, description="Partitions when the service creates its topics.")
    replication_factor: int = Field(default=1, description="Replication of created topics (3 on a cluster).")
    create_topics: bool = Field(default=True, description="Create missing topics at start-up.")
    client_id: str = "ehc"

    def topic(self, name: str) -> str:
        return self.topic_prefix + name

    def group(self, name: str) -> str:
        return self.group_prefix + name


class LoggingSettings(BaseModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_output: bool = Field(default=True, description="JSON lines (true) or human-readable (false).")


class DeadLetterSettings(BaseModel):
    encryption_key: SecretStr | None = Field(
        default=None, description="Fernet key encrypting the original records kept on the dead-letter topics "
        "(they may hold personal data); required in production. Replay needs the same key.")
    retention_days: int = Field(default=30, ge=1, description="How long dead letters are kept (and can be "
                                "replayed): the retention of the dead-letter topics the services create.")
    max_attempts: int = Field(default=3, ge=1, description="Tries of a record that fails before it is parked.")
    retry_backoff_seconds: float = Field(default=0.5, ge=0, description="Wait before the first retry; doubles "
                                         "each time.")
    max_record_bytes: int = Field(default=1_000_000, description="A bigger record is parked undecoded.")
    max_json_depth: int = Field(default=64, description="Deeper JSON nesting is parked undecoded.")


class IntakeSettings(BaseModel):
    http_host: str = "127.0.0.1"
    http_port: int = 8001
    webhook_secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="source name -> HMAC-SHA256 secret, e.g. EHC_INTAKE__WEBHOOK_SECRETS='{\"cms-a\":\"...\"}'",
    )
    webhook_max_body_bytes: int = 1_000_000
    webhook_max_skew_seconds: int = 300
    webhook_max_events: int = Field(default=1000, ge=1, description="Events in one webhook batch at most (413).")
    webhook_sources: dict[str, list[str]] = Field(
        default_factory=dict,
        description="webhook source -> the CloudEvents `source` values it may publish (each one exactly, or "
        "followed by `/...`); default: its own name, e.g. EHC_INTAKE__WEBHOOK_SOURCES='{\"cms-a\":[\"cms/capita\"]}'",
    )
    webhook_mappings: dict[str, str] = Field(
        default_factory=dict,
        description="webhook source -> the mapping its messages are read with (default: canonical events), "
        "e.g. EHC_INTAKE__WEBHOOK_MAPPINGS='{\"cms-a\":\"caseflow\"}'",
    )
    mappings_dir: Path | None = Field(
        default=None,
        description="Folder of YAML source mappings; a mapping there replaces a shipped example of the same name.",
    )
    source_topics: dict[str, str] = Field(
        default_factory=dict,
        description="mapping name -> the source system's own Kafka topic, "
        "e.g. EHC_INTAKE__SOURCE_TOPICS='{\"caseflow\":\"caseflow.status\"}'",
    )
    case_id_key: SecretStr | None = Field(
        default=None,
        description="Per-deployment secret key (at least 16 characters) hashing councils' references into opaque "
        "case ids. Keep it stable: changing it changes every case id. Required in production.",
    )
    import_batch_size: int = Field(default=500, ge=1, le=5000, description="Records per transaction in imports.")


class DeadlinesSettings(BaseModel):
    http_host: str = "127.0.0.1"
    http_port: int = 8002
    ruleset: str = "england"
    tick_seconds: float = Field(default=2.0, description="How often due timers are claimed.")
    reminder_working_days: list[int] = Field(default=[10, 5, 3, 1, 0], description="Reminder offsets before due "
                                             "(5 and 1 remind families of their own deadlines).")
    due_soon_working_days: int = 10
    bank_holiday_overrides: Path | None = None
    term_calendar: Path | None = None
    api_tokens: dict[str, str] = Field(
        default_factory=dict,
        description="bearer token -> role (caseworker|manager|admin), e.g. '{\"t0k3n\":\"manager\"}'",
    )


class NotifierSettings(BaseModel):
    http_host: str = "127.0.0.1"
    http_port: int = 8003
    email_channel: Literal["smtp", "notify", "file"] = "smtp"
    sms_channel: Literal["notify", "sms_gateway", "file"] = "file"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    mail_from: str = "ehc-deadlines@council.example"
    notify_base_url: str = "https://api.notifications.service.gov.uk"
    notify_api_key: SecretStr | None = Field(default=None, description="GOV.UK Notify API key (name-serviceid-secret).")
    notify_templates: dict[str, str] = Field(default_factory=dict, description="template name -> Notify template id")
    notify_callback_token: SecretStr | None = None
    sms_gateway_url: str | None = None
    sms_gateway_auth_header: SecretStr | None = None
    sms_gateway_body_template: str = '{"to": "{{ to }}", "message": {{ body | tojson }}}'
    file_sink_dir: Path = Path("var/outbox-mail")
    encryption_key: SecretStr | None = Field(default=None, description="Fernet key for contacts at rest.")
    quiet_hours_start: str = "20:00"
    quiet_hours_end: str = "08:00"
    subscriptions_file: Path | None = None
    council_name: str = Field(default="the council", description="As families know it, e.g. Hertfordshire CC")
    council_phone: str = Field(default="", description="The SEND team's phone number for families.")
    info_url: str = Field(default="https://www.gov.uk/children-with-special-educational-needs",
                          description="The council's SEND local offer page (links, not details, in texts).")
    sendiass_contact: str = Field(default="", description="Local SEND information, advice and support service.")
    case_url_base: str = Field(default="http://127.0.0.1:8004/cases",
                               description="Where caseworkers open a case: the web front's case pages.")
    caseworker_directory: dict[str, str] = Field(
        default_factory=dict, description="caseworker_id -> work email address"
    )
    admin_tokens: list[SecretStr] = Field(
        default_factory=list,
        description="Bearer tokens for the subscriptions API, e.g. EHC_NOTIFIER__ADMIN_TOKENS='[\"t0k3n\"]'",
    )
    caseworker_reminders: Literal["digest", "immediate"] = Field(
        default="digest",
        description="digest: new deadlines, reminders and exception nudges gathered into one email per caseworker "
        "at digest_time on working days (breach alerts always go at once); immediate: one email per event.",
    )
    digest_time: str = Field(default="08:00", description="Daily digests and weekly summaries (Europe/London).")
    bank_holiday_overrides: Path | None = Field(
        default=None, description="Extra or removed bank holidays for digests' working days (the same file as "
        "EHC_DEADLINES__BANK_HOLIDAY_OVERRIDES).")
    due_soon_working_days: int = Field(default=10, description="Digests list deadlines due within this many "
                                       "working days.")
    breaches_url: str = Field(default="http://127.0.0.1:8004/dashboard/cases?only=overdue",
                              description="Staff list of missed deadlines (texts link here: no case reference).")
    at_risk_url: str = Field(default="http://127.0.0.1:8004/dashboard/cases?only=due_soon",
                             description="Staff at-risk list (the web front).")
    notify_rate_per_minute: int = Field(default=3000, description="GOV.UK Notify's limit per API key.")
    notify_rate_burst: int = 1000
    texts_per_number_per_hour: int = Field(default=3, description="At most this many texts to one number an hour.")
    sender_batch: int = Field(default=10, description="Notifications claimed per pass of a sender worker (at most "
                              "sender_concurrency: a claimed row is sent at once, its outcome recorded as it ends).")
    sender_concurrency: int = Field(default=10, description="Requests in flight at once, per sender worker "
                                    "(with 2 workers, as many as the 20 connections kept to GOV.UK Notify).")
    sender_workers: int = Field(default=2, description="Sender passes at once (one claims while another waits).")
    smtp_pool_size: int = Field(default=4, description="SMTP connections kept open and reused (0: one per email).")
    # --- what the messages say and when (issue 9) ---
    historical_after_days: int = Field(
        default=2, ge=0, description="A milestone first seen more than this many days after it happened is "
        "recorded as historical and nobody is told (backfills, imports, a service down for days).")
    family_link_base: str = Field(
        default="", description="The link at the end of every text to a family when the web front's family "
        "links are off (no EHC_WEB__FAMILY_LINK_SECRET in production): the family page, at most 40 characters; "
        "info_url when empty.")
    short_link_base: str = Field(
        default="", description="The web front's address as texts to families give it: each text ends with "
        "<this>/f/<a 12-character code> opening the child's timeline (at most 25 characters so a text fits one "
        "SMS, e.g. a shorter name of the same site); EHC_WEB__BASE_URL when empty.")
    family_reminder_days: list[int] = Field(
        default=[5, 1], description="Working days before a family's own deadline (draft plan comments, mediation "
        "adviser, appeal) that they are reminded; each must be one of EHC_DEADLINES__REMINDER_WORKING_DAYS.")
    decision_hold_seconds: int = Field(
        default=120, ge=0, description="A decision text waits this long for the deadlines the same notice starts "
        "(appeal, mediation adviser, the plan's due date), so it can name them.")
    use_child_first_name: bool = Field(
        default=False, description="Emails to families may use the child's first name where the contacts carry it "
        "(never texts; kept encrypted until the email is made).")
    manager_quiet_hours_start: str = Field(default="20:00", description="Breach alerts to managers in these hours "
                                           "(Europe/London) wait for the morning roll-up, unless the subscription "
                                           "is breach_immediate.")
    manager_quiet_hours_end: str = "08:00"
    team_names: dict[str, str] = Field(default_factory=dict, description="Earlier name of EHC_TEAM_NAMES (still "
                                       "read; the shared setting wins where both name a team). Filled from it.")
    area_names: dict[str, str] = Field(default_factory=dict, description="Earlier name of EHC_AREA_NAMES (as "
                                       "team_names).")
    digest_max_items: int = Field(default=25, ge=1, description="Items per list in a caseworker's daily digest "
                                  "(most urgent first; the rest are counted and linked).")
    sender_lease_seconds: float = Field(
        default=60, description="A claimed notification's lease: a send is abandoned (and never retried) before it "
        "ends; a row still 'sending' after it was interrupted (a crash) and is swept to technical-failure, "
        "the caseworker told.")
    sender_sweep_seconds: float = Field(default=30, description="How often interrupted sends are swept.")
    sender_stop_seconds: float = Field(default=20, description="On a graceful stop, how long in-flight sends may "
                                       "take to finish before they are settled as interrupted.")


class WebSettings(BaseModel):
    """The web front (services/web): pages for caseworkers, managers and families."""

    http_host: str = "127.0.0.1"
    http_port: int = 8004
    base_url: str = Field(default="http://127.0.0.1:8004", description="Where people reach the web front "
                          "(links in emails and texts are built on it).")
    council_name: str = Field(default="Sample County Council", description="Shown in the header of every page.")
    council_phone: str = ""
    sendiass_contact: str = Field(default="", description="Local SEND information, advice and support service, "
                                  "shown to families.")
    session_secret: SecretStr | None = Field(default=None, description="Signs staff sessions and CSRF tokens "
                                             "(at least 32 characters). Required in production.")
    session_max_age_seconds: int = Field(default=8 * 3600, description="A staff session ends after this long.")
    secure_cookies: bool = Field(default=True, description="Cookies only over HTTPS (false for local http).")
    deadlines_api_url: str = Field(default="http://127.0.0.1:8002", description="The deadlines read API.")
    deadlines_api_token: SecretStr | None = Field(default=None, description="A token of role admin in "
                                                  "EHC_DEADLINES__API_TOKENS: the web front applies each person's "
                                                  "scope itself.")
    notifier_api_url: str = Field(default="http://127.0.0.1:8003", description="The notifier's API.")
    notifier_api_token: SecretStr | None = Field(default=None, description="One of EHC_NOTIFIER__ADMIN_TOKENS.")
    intake_webhook_url: str = Field(default="http://127.0.0.1:8001/v1/events", description="Intake's webhook: "
                                    "exceptions and families' messages become case events through it.")
    intake_source: str = Field(default="ehc/web", description="The webhook source name of the web front (its "
                               "secret is EHC_INTAKE__WEBHOOK_SECRETS[source]).")
    intake_secret: SecretStr | None = Field(default=None, description="The HMAC secret of that source.")
    oidc_metadata_url: str | None = Field(default=None, description="The identity provider's "
                                          ".well-known/openid-configuration address.")
    oidc_client_id: str = ""
    oidc_client_secret: SecretStr | None = None
    oidc_scope: str = "openid profile email"
    oidc_roles_claim: str = Field(default="roles", description="The claim listing a person's roles, e.g. "
                                  "[\"caseworker\"], [\"manager:team-north\"], [\"manager:area:east\"], [\"admin\"].")
    oidc_caseworker_claim: str = Field(default="sub", description="The claim holding the caseworker id.")
    role_mapping: dict[str, list[str]] = Field(default_factory=dict, description="subject or email -> roles, for "
                                               "an identity provider that sends no roles claim.")
    dev_sign_in: bool = Field(default=False, description="A sign-in form without an identity provider, for "
                              "`ehc run` only; refused in production.")
    family_link_secret: SecretStr | None = Field(default=None, description="Signs families' links (at least 32 "
                                                 "characters). Required in production; the notifier uses it too.")
    family_link_days: int = Field(default=90, description="A family's link expires after this many days.")
    dashboard_seconds: float = Field(default=60.0, description="Managers' dashboard figures are recounted at most "
                                     "this often (the page says when they were counted).")
    assets_dir: Path | None = Field(default=None, description="GOV.UK Frontend's dist/govuk folder (default: "
                                    "services/web/node_modules/govuk-frontend/dist/govuk, installed by make).")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    environment: str = Field(default="local", description="local | test | staging | production (any case); "
                             "production makes the secrets mandatory")
    database_url: str = Field(
        default="sqlite+aiosqlite:///var/ehc-{service}.db",
        description="SQLAlchemy async URL. `{service}` is replaced by the service name (one SQLite file "
        "per service); on PostgreSQL all services share one database, a schema each.",
    )
    db_schema_prefix: str = Field(default="", description="Prefix for each service's schema (tests).")
    kafka: KafkaSettings = KafkaSettings()
    logging: LoggingSettings = LoggingSettings()
    intake: IntakeSettings = IntakeSettings()
    deadlines: DeadlinesSettings = DeadlinesSettings()
    notifier: NotifierSettings = NotifierSettings()
    web: WebSettings = WebSettings()
    dead_letters: DeadLetterSettings = DeadLetterSettings()
    team_names: dict[str, str] = Field(default_factory=dict, description="team_id -> the name staff know it by, "
                                       "in the notifier's messages and on the web front's pages (the id where "
                                       "none is set), e.g. EHC_TEAM_NAMES='{\"team-north\": \"North SEN team\"}'")
    area_names: dict[str, str] = Field(default_factory=dict, description="area_id -> the name staff know it by.")
    http_max_body_bytes: int = Field(default=1_000_000, ge=1, description="Largest request body any HTTP "
                                     "endpoint reads (413 beyond; intake's webhook has its own limit).")
    outbox_retention_days: float = Field(default=7, ge=0, description="Published outbox rows (which can hold "
                                         "contact details) are deleted this long after publication.")

    @field_validator("environment", mode="before")
    @classmethod
    def _known_environment(cls, value: object) -> object:
        normalised = str(value).strip().lower()
        if normalised not in ENVIRONMENTS:
            raise ValueError(f"must be one of {', '.join(ENVIRONMENTS)} (any case), got {str(value)[:40]!r}")
        return normalised

    @model_validator(mode="after")
    def _shared_names(self) -> Settings:
        """One mapping of team and area names for every service: the notifier's earlier variables
        (EHC_NOTIFIER__TEAM_NAMES, _AREA_NAMES) still count, the shared ones win where both name one."""
        self.team_names = {**self.notifier.team_names, **self.team_names}
        self.area_names = {**self.notifier.area_names, **self.area_names}
        self.notifier.team_names, self.notifier.area_names = self.team_names, self.area_names
        return self

    @property
    def outbox_retention(self) -> timedelta:
        return timedelta(days=self.outbox_retention_days)

    def database_url_for(self, service: str) -> str:
        return self.database_url.replace("{service}", service)

    def schema_for(self, service: str) -> str:
        return self.db_schema_prefix + service


def known_env_vars(model: type[BaseModel] = Settings, prefix: str = ENV_PREFIX) -> set[str]:
    """Every environment variable the settings understand (checked against docker-compose.yml)."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= known_env_vars(annotation, f"{prefix}{name.upper()}__")
        else:
            names.add(f"{prefix}{name.upper()}")
    return names


def load_settings() -> Settings:
    """The settings from the environment; :class:`SettingsError` with one line naming the variable
    (e.g. ``EHC_ENVIRONMENT: must be one of ...``) when they are unusable."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ENV_PREFIX + "__".join(str(part) for part in error["loc"]).upper()
            problems.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
        raise SettingsError("; ".join(problems)) from None
