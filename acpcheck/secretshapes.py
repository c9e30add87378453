"""What a secret looks like: the one list every place that may show input text consults.

A string that holds one of these shapes is refused as input without being echoed
(``acpcheck.model.validation.find_literal_secrets``), and no problem line ever quotes
one (``acpcheck.errors.Problem``): a key, a file name or a value that looks like a
credential is replaced by what kind of thing it looks like.

**Linear time.** Every input string goes through every shape, and a value may be as
long as the 16 MiB input limit. Python's ``re`` backtracks, so a pattern that can try a
long run of characters from each of many starting points is quadratic: the URL shape
was once ``[A-Za-z][A-Za-z0-9+.-]*://…``, tried at every letter of a long word and each
try running to the word's end (41 s for a 200 KB value, hours for 3 MB). The patterns
here keep to three rules, so that no character is looked at more than a fixed number of
times however the text is built:

1. A pattern starts with a literal (``://``, ``eyJ``, ``$``, ``ghp_``, ``:``; ``bearer``
   in either case), which ``re`` finds with its fast prefix scan; a check on what comes
   *before* it is a fixed-width look-behind placed after that literal, never a leading
   ``\\b`` or ``(?<!…)``, which would make ``re`` try every position. The words of an
   inline secret are matched in the lower-cased text (``Shape.lower_case``): IGNORECASE
   on a list of words leaves ``re`` no literal to scan for.
2. A run of unbounded length is possessive (``++``, ``*+``: it never gives characters
   back), and cannot contain the literal its pattern starts with, so the runs scanned
   from different starting points do not overlap. The one run that gives characters
   back, in ``-----BEGIN [A-Z0-9 ]*PRIVATE KEY``, does so only within the run after its
   own ``-----BEGIN``, which cannot hold a "-" and so no other start shares.
3. Every other repetition has a fixed bound (``{16}``).

``bench/secret_scan_bench.py`` measures the scan from 64 KiB to 16 MiB (about 2x time
per doubling of the size), and ``tests/unit/test_secret_shapes.py`` scans 16 MiB values
built to defeat each pattern.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    """One kind of secret."""

    #: what it is, for a sentence: "an access token"
    kind: str
    #: the problem when an input holds it: "<what> (value not shown); <advice>"
    refusal: str
    patterns: tuple[re.Pattern[str], ...]
    #: a second look at each match, for shapes a pattern alone cannot tell from prose
    confirm: Callable[[re.Match[str]], bool] | None = None
    #: the patterns read the text in lower case (``re``'s IGNORECASE finds no literal
    #: to scan for and tries every position: 20 times slower)
    lower_case: bool = False

    def found_in(self, text: str) -> bool:
        if self.confirm is None:
            return any(pattern.search(text) for pattern in self.patterns)
        confirm = self.confirm
        return any(confirm(match) for pattern in self.patterns for match in pattern.finditer(text))


def _glued(prefix: str) -> str:
    """``prefix`` (a fixed-width regex) not glued to a letter or digit before it: the
    literal first (rule 1), the look-behind after it."""
    return f"{prefix}(?<![A-Za-z0-9]{prefix})"


def _token(prefix: str, body: str) -> re.Pattern[str]:
    return re.compile(_glued(prefix) + body)


# -- confirmations ------------------------------------------------------------

#: The base64 characters of a ``Basic`` credential that are decoded to look at them: a
#: user name and the colon after it fit in far fewer (our bound).
_BASIC_PREFIX = 1024


def _is_basic_credential(match: re.Match[str]) -> bool:
    """``Basic <base64>`` is a credential when the base64 decodes to text holding the
    ``user:password`` colon; ``Basic configuration`` decodes to nothing of the kind."""
    encoded = match.group(1)[:_BASIC_PREFIX]
    encoded += "=" * (-len(encoded) % 4)
    try:
        text = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return False
    return ":" in text and text.isprintable()


def _is_der_private_key(match: re.Match[str]) -> bool:
    """A base64 run whose bytes start like a DER private key: a SEQUENCE whose first
    element is the INTEGER version 0 or 1 (PKCS#1 RSA and DSA, PKCS#8, SEC1 EC keys) or
    3 (a PKCS#12 bundle, which holds one). A certificate, a public key or a CSR starts
    its SEQUENCE with another SEQUENCE, or with a long INTEGER, and is not matched."""
    try:
        head = base64.b64decode(match.group()[:16])
    except (binascii.Error, ValueError):  # pragma: no cover — 16 base64 characters always decode
        return False
    if head[0] != 0x30:
        return False
    length = head[1]
    start = 2 if length < 0x80 else 2 + (length & 0x7F)
    return (
        length != 0x80
        and head[start : start + 2] == b"\x02\x01"
        and head[start + 2 : start + 3] in (b"\x00", b"\x01", b"\x03")
    )


_TOKEN_SIGN = re.compile(r"[0-9A-Z._~+/]")


def _is_bearer_token(match: re.Match[str]) -> bool:
    """``Bearer Kq7canaryZx3`` is a token, ``Bearer authentication`` or ``Bearer
    token-based`` is prose: a token has a digit, a capital letter or a symbol other
    than "-" after its first character."""
    return _TOKEN_SIGN.search(match.group(1), 1) is not None


# -- the shapes -----------------------------------------------------------------

#: Words after which ``=`` or ``:`` and a value make an inline secret, in lower case.
#: Matched anywhere, also inside a longer name, so that ``dbPassword=``,
#: ``client_secret:``, ``accessToken:`` and Azure's ``SharedAccessKey=`` are caught.
_SECRET_WORDS = (
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "credentials?",
    "authorization",
    "sharedaccesssignature",
    "api[-_]?key",
    "access[-_]?key",
    "secret[-_]?key",
    "private[-_]?key",
    "account[-_]?key",
    "client[-_]?key[-_]?data",
)

SHAPES: tuple[Shape, ...] = (
    Shape(
        "an inline private key",
        "looks like an inline private key; use privateKeyFile",
        (
            re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY"),  # the run stops at "-": one per BEGIN
            re.compile(r"PRIVATE KEY-----"),
            re.compile(r"PuTTY-User-Key-File-"),
            re.compile(r"b3BlbnNzaC1rZXktdjE"),  # "openssh-key-v1" in base64: an OpenSSH key's body
        ),
    ),
    Shape(
        "a private key without its BEGIN line",
        "looks like the body of a private key (base64 without its BEGIN line); use privateKeyFile",
        # the first 40 characters of a base64 run that starts with "M" (a DER SEQUENCE);
        # a PEM body's first line has 64
        (re.compile(r"M(?<![A-Za-z0-9+/]M)[A-Za-z0-9+/]{39}"),),
        _is_der_private_key,
    ),
    Shape(
        "a URL with user info",
        "a URL with user info (credentials) is refused; keep credentials in …Env or …File references",
        # user info runs to "@" before any "/", "?", "#" or space; it cannot hold "://"
        (re.compile(r"://(?<=[A-Za-z0-9+.-]://)[^/\s@?#]++@"),),
    ),
    Shape(
        "an inline secret",
        "looks like an inline secret (a password, token or key written after = or :)",
        # one pattern per word, each with a literal to scan for (rule 1)
        tuple(re.compile(rf"{word}[\"']?\s*+[:=]\s*+[^\s,;]") for word in _SECRET_WORDS),
        lower_case=True,
    ),
    Shape(
        "an access token",
        "looks like an access token",
        (
            # a JWT: base64url of '{"…' twice, separated by a dot; the header starts a run
            re.compile(r"eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{8,}+\.eyJ[A-Za-z0-9_-]{4,}+\."),
            *(
                _token(prefix, r"[A-Za-z0-9_-]{16}")
                for prefix in ("gh[pousr]_", "github_pat_", "glpat-", "xox[abprs]-")
            ),  # GitHub, GitLab, Slack
            _token("A[KS]IA", r"[0-9A-Z]{16}(?![0-9A-Za-z])"),  # AWS access key id
            _token("[sr]k_", r"(?:live|test)_[0-9A-Za-z]{16}"),  # Stripe secret and restricted keys
            _token("AIza", r"[0-9A-Za-z_-]{35}"),  # Google API key
            _token("npm_", r"[A-Za-z0-9]{36}"),  # npm access token
            _token("pypi-", r"AgEIcHlwaS5vcmc"),  # PyPI API token
        ),
    ),
    Shape(
        "a bearer token",
        "looks like a bearer token (an Authorization header value)",
        (re.compile(r"(?i)bearer\s++([A-Za-z0-9._~+/-]{8,}+)"),),
        _is_bearer_token,
    ),
    Shape(
        "Basic credentials",
        "looks like Basic credentials (user:password in base64)",
        (re.compile(r"(?i)basic\s++([A-Za-z0-9+/]{4,}+=*+)"),),
        _is_basic_credential,
    ),
    Shape(
        "a line of a shadow password file",
        "looks like a line of a shadow password file",
        # name:password:lastchg:min:max:warn:inactive:expire, the password locked (! *),
        # a crypt hash or a 13-character DES hash; anchored on the colon after the name
        (
            re.compile(
                r":(?<=[A-Za-z0-9_.$-]:)(?:[!*]++(?:\$[^:\s]++|[./0-9A-Za-z]{13})?|\$[^:\s]++|[./0-9A-Za-z]{13})"
                r":\d*+:\d*+:\d*+:\d*+:\d*+:\d*+(?![^:\s])"
            ),
        ),
    ),
    Shape(
        "a password hash",
        "looks like a password hash (a line of a shadow or htpasswd file?)",
        (
            # $id$[params$]salt$hash (crypt(3): MD5, bcrypt, SHA-256/512, yescrypt, Argon2 …)
            re.compile(
                r"\$(?:1|2[abxy]|5|6|7|y|gy|apr1|sha1|scrypt|argon2(?:id|i|d)|pbkdf2[-a-z0-9]*+)\$[A-Za-z0-9./=,+-]++\$[A-Za-z0-9./=,+-]{8}"
            ),
            re.compile(
                r"\{(?:SSHA|SHA|SMD5|MD5|CRYPT|SSHA256|SSHA512|SHA256|SHA512|PBKDF2[-A-Z0-9]*+)\}[A-Za-z0-9+/$.]{8}"
            ),  # LDAP
        ),
    ),
)


def secret_shape(text: str) -> Shape | None:
    """The first shape ``text`` holds, or None."""
    lowered: str | None = None
    for shape in SHAPES:
        if shape.lower_case:
            lowered = text.lower() if lowered is None else lowered
        if shape.found_in(lowered if shape.lower_case and lowered is not None else text):
            return shape
    return None


#: The longest value a message quotes back (our choice: any address, name, selector
#: or version acpcheck takes fits; a key body or a token does not).
QUOTE_LIMIT = 100

_CLASSES = (re.compile("[a-z]"), re.compile("[A-Z]"), re.compile("[0-9]"), re.compile(r"[^A-Za-z0-9.:/-]"))


def could_be_secret(text: str, password_like: bool = True) -> bool:
    """Whether a value acpcheck could not make sense of might be a secret typed in
    the wrong place, so that a message names its field and says what is wrong instead
    of quoting it: a secret shape, more than ``QUOTE_LIMIT`` characters, or (with
    ``password_like``; not for file paths, which often have it) the mix a password
    policy asks for, three of lower case, capitals, digits and symbols (the dots,
    colons, hyphens and slashes of addresses, names and paths do not count).
    ``'2001:db8::21'``, ``'not_a_host!'`` and ``'colour:red'`` are quoted;
    ``Zq9-Hunter2-canary`` and ``Hunter2!`` are not."""
    if len(text) > QUOTE_LIMIT:
        return True
    if password_like and sum(1 for pattern in _CLASSES if pattern.search(text)) >= 3:
        return True
    return secret_shape(text) is not None
