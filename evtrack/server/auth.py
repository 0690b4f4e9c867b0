"""Optional authentication: HTTP basic users and bearer tokens, with two roles.

Credentials come from a YAML file (``--auth-file`` or ``EVTRACK_AUTH_FILE``)::

    users:
      - name: alice
        password: "pbkdf2_sha256$600000$<salt hex>$<hash hex>"   # or sha256:<hex>, or plain text
        role: read-write
      - {name: viewer, password: "s3cret", role: read-only}
    tokens:
      - {name: ci-bot, token: "sha256:<hex of the token>", role: read-write}

or from the environment: ``EVTRACK_AUTH_USERS="alice:rw:secret bob:ro:pw"`` and
``EVTRACK_AUTH_TOKENS="ci-bot:rw:<token>"`` (entries separated by whitespace,
the secret last so it may contain colons). MLflow's client sends basic credentials
from ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` and a bearer token
from ``MLFLOW_TRACKING_TOKEN``. With no credentials configured the server is open
(and bound to 127.0.0.1 by default).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from evtrack.errors import EvtrackError

READ_ONLY, READ_WRITE = "read-only", "read-write"
_ROLE_NAMES = {
    "ro": READ_ONLY,
    "read-only": READ_ONLY,
    "read": READ_ONLY,
    "rw": READ_WRITE,
    "read-write": READ_WRITE,
    "write": READ_WRITE,
}
AUTH_FILE_ENV, USERS_ENV, TOKENS_ENV = "EVTRACK_AUTH_FILE", "EVTRACK_AUTH_USERS", "EVTRACK_AUTH_TOKENS"


class AuthConfigError(EvtrackError):
    """The users/tokens file or variable cannot be understood."""

    error_code = "INVALID_PARAMETER_VALUE"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    name: str
    role: str

    @property
    def can_write(self) -> bool:
        return self.role == READ_WRITE


def hash_secret(secret: str, iterations: int = 600_000) -> str:
    """A salted PBKDF2-SHA256 hash of a password, in the form the users file accepts."""
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def _matches(stored: str, given: str) -> bool:
    """Whether ``given`` is the secret ``stored`` describes (constant-time comparisons)."""
    if stored.startswith("pbkdf2_sha256$"):
        try:
            _, iterations, salt, digest = stored.split("$")
            computed = hashlib.pbkdf2_hmac("sha256", given.encode(), bytes.fromhex(salt), int(iterations))
        except ValueError:
            return False
        return hmac.compare_digest(computed.hex(), digest)
    if stored.startswith("sha256:"):
        return hmac.compare_digest(hashlib.sha256(given.encode()).hexdigest(), stored[len("sha256:") :])
    return hmac.compare_digest(stored.encode(), given.encode())


def _role(value: object, where: str) -> str:
    role = _ROLE_NAMES.get(str(value).strip().lower())
    if role is None:
        raise AuthConfigError(f"{where}: unknown role {value!r} (use read-only or read-write)")
    return role


@dataclass(frozen=True)
class _Credential:
    name: str
    secret: str
    role: str


class Authenticator:
    """Checks the ``Authorization`` header of a request against the configured credentials."""

    def __init__(self, users: list[_Credential], tokens: list[_Credential]) -> None:
        self.users = {u.name: u for u in users}
        self.tokens = tokens

    @property
    def enabled(self) -> bool:
        return bool(self.users or self.tokens)

    @classmethod
    def load(cls, auth_file: str | None = None) -> Authenticator:
        """Credentials from the file (argument or ``EVTRACK_AUTH_FILE``) and the environment."""
        users: list[_Credential] = []
        tokens: list[_Credential] = []
        path = auth_file or os.environ.get(AUTH_FILE_ENV)
        if path:
            users, tokens = _from_file(Path(path))
        users += _from_env(USERS_ENV)
        tokens += _from_env(TOKENS_ENV)
        return cls(users, tokens)

    def authenticate(self, authorization: str | None) -> Principal | None:
        """The caller named by an ``Authorization`` header, or None when it proves nothing."""
        if not authorization:
            return None
        scheme, _, value = authorization.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            try:
                name, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            user = self.users.get(name)
            if user is not None and _matches(user.secret, password):
                return Principal(user.name, user.role)
            return None
        if scheme == "bearer":
            token = value.strip()
            for cred in self.tokens:
                if _matches(cred.secret, token):
                    return Principal(cred.name, cred.role)
        return None


def _from_file(path: Path) -> tuple[list[_Credential], list[_Credential]]:
    import yaml

    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise AuthConfigError(f"Cannot read the auth file {str(path)!r}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise AuthConfigError(f"The auth file {str(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or set(doc) - {"users", "tokens"}:
        raise AuthConfigError(f"The auth file {str(path)!r} must be a mapping with 'users' and/or 'tokens'")
    users, tokens = [], []
    for kind, secret_key, out in (("users", "password", users), ("tokens", "token", tokens)):
        for i, entry in enumerate(doc.get(kind) or []):
            where = f"{path}: {kind}[{i}]"
            if not isinstance(entry, dict) or not entry.get("name") or not entry.get(secret_key):
                raise AuthConfigError(f"{where} needs 'name', '{secret_key}' and 'role'")
            out.append(_Credential(str(entry["name"]), str(entry[secret_key]), _role(entry.get("role"), where)))
    return users, tokens


def _from_env(variable: str) -> list[_Credential]:
    out = []
    for item in os.environ.get(variable, "").split():
        name, _, rest = item.partition(":")
        role, _, secret = rest.partition(":")
        if not name or not secret:
            raise AuthConfigError(f"{variable}: entry {name or item!r} must be name:role:secret")
        out.append(_Credential(name, secret, _role(role, variable)))
    return out
