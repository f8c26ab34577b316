"""Django settings, read from the environment (see the configuration table in README.md).

Every default runs on one machine: SQLite under var/, a broker on files, log-only notifications.
"""

from datetime import timedelta

from csp.constants import NONCE, NONE, SELF

from config import env
from config.env import BASE_DIR, VAR_DIR
from portal.roles import Role

try:
    DATABASES = {"default": env.database("DATABASE_URL", f"sqlite:///{VAR_DIR}/greenlight.sqlite3")}
    # One machine (the demo): SQLite, a generated key, a shiftable clock. Anything else is a real
    # deployment, where the key must be given and the clock is the real one.
    ONE_MACHINE = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    # The demo's conveniences (printing a user's current code) exist only where DEMO is on.
    DEMO = env.flag("DEMO", ONE_MACHINE)
    SECRET_KEY = env.secret_key(generate=ONE_MACHINE)
    DEBUG = env.flag("DEBUG")
    ALLOWED_HOSTS = env.word_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
    CSRF_TRUSTED_ORIGINS = env.origins("CSRF_TRUSTED_ORIGINS")
    TRUSTED_PROXIES = env.networks("TRUSTED_PROXIES")

    _replica = env.database("DATABASE_REPLICA_URL", None)
    if _replica is not None:
        # Tests create no second database: the replica mirrors the default one there.
        DATABASES["replica"] = {**_replica, "TEST": {"MIRROR": "default"}}
    for _database in DATABASES.values():  # the same drivers, their queries counted for /metrics
        _database["ENGINE"] = _database["ENGINE"].replace("django.db.", "django_prometheus.db.")

    # /metrics answers a bearer token or a client in these networks (the demo: this machine).
    METRICS_TOKEN = env.text("METRICS_TOKEN")
    METRICS_NETWORKS = env.networks("METRICS_NETWORKS") or (
        env.networks_of(["127.0.0.0/8", "::1"]) if DEMO else []
    )

    # Addresses typed into the deploy settings (the colours, their smoke checks, the webhook
    # deployer) must be public ones; a loopback, link-local, private or metadata address is reached
    # only when its host or network is listed here (the demo: its simulated production on this machine).
    OUTBOUND_ALLOWED_HOSTS = env.hosts(
        "OUTBOUND_ALLOWED_HOSTS", ["localhost", "127.0.0.0/8", "::1"] if DEMO else []
    )

    REDIS_URL = env.redis_url("REDIS_URL")
    # The queue the portal's tasks go to and its workers read (two installations on one broker).
    CELERY_TASK_DEFAULT_QUEUE = env.text("CELERY_QUEUE", "celery")

    AWS_REGION = env.text("AWS_REGION", "us-east-1")
    AWS_ENDPOINT_URL = env.url("AWS_ENDPOINT_URL")

    GITHUB_TOKEN = env.text("GITHUB_TOKEN")
    GITHUB_REPOSITORY = env.text("GITHUB_REPOSITORY")
    GITHUB_API_URL = env.url("GITHUB_API_URL", "https://api.github.com")
    GITHUB_WEBHOOK_SECRET = env.text("GITHUB_WEBHOOK_SECRET")
    # Without GITHUB_REPOSITORY, releases are cut in a repository on disk (the demo's own is made
    # by demo_seed), the portal's merges and tags signed with an SSH key that the allowed-signers
    # file trusts, as it trusts the people whose commits are released.
    GIT_REPOSITORY_PATH = env.text("GIT_REPOSITORY_PATH", str(VAR_DIR / "demo-repo") if ONE_MACHINE else None)
    GIT_SIGNING_KEY = env.text("GIT_SIGNING_KEY", str(VAR_DIR / "demo-signing-key") if ONE_MACHINE else None)
    GIT_ALLOWED_SIGNERS = env.text(
        "GIT_ALLOWED_SIGNERS", str(VAR_DIR / "demo-allowed-signers") if ONE_MACHINE else None
    )

    SLACK_BOT_TOKEN = env.text("SLACK_BOT_TOKEN")
    SLACK_API_URL = env.url("SLACK_API_URL", "https://slack.com/api/")
    PAGERDUTY_ROUTING_KEY = env.text("PAGERDUTY_ROUTING_KEY")
    PAGERDUTY_EVENTS_URL = env.url("PAGERDUTY_EVENTS_URL", "https://events.pagerduty.com/v2/enqueue")
    # Signs PagerDuty's V3 webhooks (acknowledged, resolved on PagerDuty); unset, they are refused.
    PAGERDUTY_WEBHOOK_SECRET = env.text("PAGERDUTY_WEBHOOK_SECRET")
    # CloudWatch alarms through SNS: the hosts an SNS signing certificate and SubscribeURL may come
    # from (`*` is one label of the name), the topics taken (required: AWS signs every account's
    # topics; unset, SNS's messages are refused), and the severity an alarm declares.
    SNS_CERT_HOSTS = env.word_list("SNS_CERT_HOSTS", ["sns.*.amazonaws.com", "sns.*.amazonaws.com.cn"])
    SNS_TOPIC_ARNS = env.word_list("SNS_TOPIC_ARNS", [])
    SNS_ALARM_SEVERITY = env.choice("SNS_ALARM_SEVERITY", "P1", {"P0", "P1", "P2", "P3"})
    # Who is told, level after level, while an incident is not acknowledged in its response target:
    # Slack channels (#...) and e-mail addresses.
    INCIDENT_ESCALATION = env.word_list("INCIDENT_ESCALATION", ["#production-alerts"])
    _email = env.email("EMAIL_URL")
    DEFAULT_FROM_EMAIL = env.text("EMAIL_FROM", "greenlight@localhost")
    # The portal's address as people outside reach it (https://greenlight.example.com): links in
    # e-mails sent by a worker, with no request to take it from (the status page's updates).
    PUBLIC_URL = env.url("PUBLIC_URL")

    LOG_FORMAT = env.choice("LOG_FORMAT", "json", {"json", "text"})
    LOG_LEVEL = env.choice("LOG_LEVEL", "INFO", {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})
    # Which of several processes sharing one console wrote a text line ("worker", in the demo).
    _process_label = env.text("PROCESS_LABEL", "")

    # Unset in a real deployment: the clock is then the real one. The tests set it.
    CLOCK_FILE = env.text("CLOCK_FILE", str(VAR_DIR / "clock-offset") if ONE_MACHINE else None)
    OIDC_RP_CLIENT_ID = env.text("OIDC_RP_CLIENT_ID")
    OIDC_ENABLED = OIDC_RP_CLIENT_ID is not None
    if OIDC_ENABLED:
        OIDC_RP_CLIENT_SECRET = env.required("OIDC_RP_CLIENT_SECRET")
        OIDC_OP_AUTHORIZATION_ENDPOINT = env.url("OIDC_OP_AUTHORIZATION_ENDPOINT", required=True)
        OIDC_OP_TOKEN_ENDPOINT = env.url("OIDC_OP_TOKEN_ENDPOINT", required=True)
        OIDC_OP_USER_ENDPOINT = env.url("OIDC_OP_USER_ENDPOINT", required=True)
        OIDC_OP_JWKS_ENDPOINT = env.url("OIDC_OP_JWKS_ENDPOINT", required=True)
    OIDC_RP_SIGN_ALGO = env.text("OIDC_RP_SIGN_ALGO", "RS256")
    OIDC_RP_SCOPES = env.text("OIDC_RP_SCOPES", "openid email profile groups")
    OIDC_GROUPS_CLAIM = env.text("OIDC_GROUPS_CLAIM", "groups")
    OIDC_ROLE_GROUPS = env.mapping("OIDC_ROLE_GROUPS", keys=set(Role.values))
    # The audit chain (README, Security): hashes keyed with AUDIT_KEY, or with the key the Secrets
    # Manager secret AUDIT_KEY_SECRET_ARN holds, never a key the database holds; the keys it
    # replaced still verify what they hashed. The demo derives its key from SECRET_KEY.
    AUDIT_KEY_SECRET_ARN = env.text("AUDIT_KEY_SECRET_ARN")
    AUDIT_KEY = env.secret(
        "AUDIT_KEY", required=AUDIT_KEY_SECRET_ARN is None, derived_from=SECRET_KEY if DEMO else None
    )
    AUDIT_PREVIOUS_KEYS = env.word_list("AUDIT_PREVIOUS_KEYS", [])
    # The chain's head is written every AUDIT_ANCHOR_SECONDS where the application cannot change
    # it: an S3 bucket with Object Lock (compliance mode, kept AUDIT_ANCHOR_RETENTION_DAYS), or,
    # with no bucket, read-only files under var/.
    AUDIT_ANCHOR_BUCKET = env.text("AUDIT_ANCHOR_BUCKET")
    AUDIT_ANCHOR_PREFIX = env.text("AUDIT_ANCHOR_PREFIX", "audit-anchors/")
    AUDIT_ANCHOR_RETENTION_DAYS = env.integer("AUDIT_ANCHOR_RETENTION_DAYS", 400)
    AUDIT_ANCHOR_SECONDS = env.integer("AUDIT_ANCHOR_SECONDS", 300)
    AUDIT_ANCHOR_FOLDER = str(VAR_DIR / "audit-anchors")
    # Authenticator keys are sealed and backup codes digested with this key, never one the
    # database holds (portal.otp_keys); the keys it replaced still open what they sealed. The demo
    # derives its key from SECRET_KEY.
    OTP_ENCRYPTION_KEY = env.secret(
        "OTP_ENCRYPTION_KEY", required=True, derived_from=SECRET_KEY if DEMO else None
    )
    OTP_PREVIOUS_KEYS = env.word_list("OTP_PREVIOUS_KEYS", [])
    LOGIN_FAILURE_LIMIT = env.integer("LOGIN_FAILURE_LIMIT", 5)
    LOGIN_COOLOFF_MINUTES = env.integer("LOGIN_COOLOFF_MINUTES", 15)
except env.ConfigurationError as error:
    env.stop(error)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "knox",
    "mozilla_django_oidc",
    "django_prometheus",
    "portal",
    "catalogue",
    "changes",
    "deployments",
    "incidents",
    *(["demo"] if DEMO else []),
    "config",
]

MIDDLEWARE = [
    "portal.views.health.HealthCheckMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # First, so that the security middleware and everything after it see the real client.
    "portal.middleware.RequestContextMiddleware",
    "portal.middleware.LockoutClockMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "portal.middleware.SecondFactorMiddleware",
    "portal.middleware.LockoutMiddleware",
    "portal.middleware.ViewerTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Counts each response as it leaves (the lockout page among them).
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes asks: it turns a lockout raised during sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "portal.User"
AUTHENTICATION_BACKENDS = [
    # First, so a locked-out person is refused before their password is even checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
if OIDC_ENABLED:
    AUTHENTICATION_BACKENDS.append("portal.oidc.GreenlightOIDCBackend")
DATABASE_ROUTERS = ["portal.routers.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "portal.context_processors.access",
            ],
        },
    },
]

# Form widgets drawn by Django's own Jinja2 widget templates: the same HTML, a fraction of the
# time of rendering each widget and option as a Django template (the admin's own widgets, which
# have only Django templates, through those).
FORM_RENDERER = "portal.renderers.FormRenderer"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
LOGIN_REDIRECT_URL_FAILURE = "/login/"
# A password reset link works once, for an hour (the pages and the e-mail say so).
PASSWORD_RESET_TIMEOUT = 60 * 60

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Security headers. HSTS is sent only on HTTPS requests; behind a proxy, a request counts as HTTPS
# when a trusted proxy says so (RequestContextMiddleware drops the header from anyone else).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Outside the demo every page is HTTPS: plain HTTP is redirected (the health checks answer before
# this), and cookies go over HTTPS only. The demo serves plain HTTP on localhost, where a Secure
# cookie would never come back and scripted sign-in would fail.
SECURE_SSL_REDIRECT = not DEMO
SESSION_COOKIE_SECURE = not DEMO
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 12 * 60 * 60
# Read from the cache, written through to the database: a request reads its session without a query.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
CSRF_COOKIE_SECURE = not DEMO
CSRF_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "portal.views.errors.csrf_failure"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "portal.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "greenlight",
        }
    }
else:
    # Shared by every demo process (web, worker, beat), unlike the in-memory cache.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": VAR_DIR / "cache",
        }
    }

# Celery: Redis when REDIS_URL is set (`make demo` runs its own), otherwise kombu's filesystem
# transport under var/, enough for a command run by hand: a worker and beat on it can lose a message
# when both touch one file at once (a known kombu race), so nothing long-running uses it.
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
else:
    CELERY_BROKER_URL = "filesystem://"
    _queue_dir = VAR_DIR / "broker"
    _queue_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "store_processed": False,
        "control_folder": str(_queue_dir / "control"),
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A worker keeps its database connection from task to task, as the web server does from request to
# request (DATABASE_CONN_MAX_AGE, checked before each task: config.celery): connecting took 8 % of
# an engine task's time, and each new session loses the statements prepared on the last.
CELERY_DB_REUSE_MAX = 1000
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "beat-heartbeat": {"task": "portal.beat_heartbeat", "schedule": 15.0},
    "notifications-reclaim": {"task": "portal.notifications_reclaim", "schedule": 60.0},
    "approval-reminders": {"task": "changes.approval_reminders", "schedule": 900.0},
    "staging-soak-check": {"task": "changes.staging_soak_check", "schedule": 900.0},
    "pull-requests-read": {"task": "changes.pull_requests_read", "schedule": 900.0},
    "deployments-reconcile": {"task": "deployments.reconcile", "schedule": 15.0},
    "incidents-escalate": {"task": "incidents.escalate", "schedule": 30.0},
    "incidents-remind": {"task": "incidents.remind", "schedule": 3600.0},
    "status-subscribers-purge": {"task": "incidents.status_subscribers_purge", "schedule": 86400.0},
    "audit-anchor": {"task": "portal.audit_anchor", "schedule": float(AUDIT_ANCHOR_SECONDS)},
    "audit-verify": {"task": "portal.audit_verify", "schedule": 300.0},
    "audit-verify-full": {"task": "portal.audit_verify", "schedule": 86400.0, "kwargs": {"full": True}},
}

# Second factor (django-otp): TOTP apps and backup codes.
OTP_TOTP_ISSUER = "Greenlight"
# Guessing is slowed by the lockout (portal.lockout), on the portal clock; django-otp's own
# throttle would judge on the real clock and hold a right code back after a lockout ended.
OTP_TOTP_THROTTLE_FACTOR = 0
OTP_STATIC_THROTTLE_FACTOR = 0
# API tokens (django-rest-knox) are kept as a digest; their lifetime is the access policy's.
# knox's own migrations would make a table for the model we swap out; it has no use here.
MIGRATION_MODULES = {"knox": None}
KNOX_TOKEN_MODEL = "portal.ApiToken"  # noqa: S105 (a model name)
REST_KNOX = {"TOKEN_TTL": None, "AUTH_HEADER_PREFIX": "Token"}
# Lockout (django-axes) of the sign-in path: failed passwords and the codes typed after them,
# counted per account and client address together, within budgets per account and per address
# (portal.lockout says why); a signed-in person's wrong codes are counted apart, per person.
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_HANDLER = "portal.lockout.PortalClockAxesHandler"
# An attempt refused during a lockout is not counted: the cool-off runs from the last counted one.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# A right password alone does not clear failed codes: sign-in clears them once the code passes too.
AXES_RESET_ON_SUCCESS = False
AXES_CLIENT_IP_CALLABLE = "portal.middleware.axes_client_ip"
AXES_LOCKOUT_CALLABLE = "portal.views.account.locked_out"
AXES_VERBOSE = False
# django-prometheus: no migration queries when a process starts.
PROMETHEUS_EXPORT_MIGRATIONS = False

# Notifications: a channel with no credentials only logs what it would have sent.
if _email:
    globals().update(_email)
NOTIFY_EMAIL_ENABLED = bool(_email)
EMAIL_TIMEOUT = 10
NOTIFY_SLACK_ENABLED = bool(SLACK_BOT_TOKEN)
NOTIFY_PAGERDUTY_ENABLED = bool(PAGERDUTY_ROUTING_KEY)

REST_FRAMEWORK = {
    # The token first: a call without credentials is then a 401 that names the scheme to use
    # (WWW-Authenticate: Token), as DRF asks the first authenticator for the challenge.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api.authentication.ApiTokenAuthentication",
        "portal.api.authentication.VerifiedSessionAuthentication",
    ],
    # JSON is the contract (the schema documents it alone); forms are still read, for the
    # browsable API and scripts that post them.
    "DEFAULT_PARSER_CLASSES": [
        "portal.api.parsers.JSONParser",
        "portal.api.parsers.FormParser",
        "portal.api.parsers.MultiPartParser",
    ],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "portal.api.parsers.ContentNegotiation",
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "portal.api.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["portal.api.filtering.FilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "portal.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "portal.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Greenlight API",
    "DESCRIPTION": "Change requests, approvals, deployments, incidents and the audit trail.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # The schema and its docs are for people signed in; integrators read the public copy in
    # docs/api/openapi.yaml (a test keeps it equal to what the server serves).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "portal.context.RequestContextLogFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {
            "format": (f"{_process_label:<10} | " if _process_label else "")
            + "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s"
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_context"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # django-axes logs every sign-in at INFO; failures and lockouts are WARNING and stay.
        "axes": {"level": "WARNING"},
    },
}
