"""The known_hosts file at scale: one read per change, not per connection; other writers are still seen."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest
from paramiko import ECDSAKey
from paramiko.hostkeys import HostKeyEntry

from acpcheck.transport import hostkeys
from acpcheck.transport.hostkeys import KnownHosts


def line(name: str, key: ECDSAKey) -> str:
    text = HostKeyEntry([name], key).to_line()
    assert text is not None
    return text


def hashed(name: str) -> str:
    salt = b"0123456789abcdef0123"
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times the file was parsed into an index."""
    count: list[int] = []
    real = hostkeys._Index.of.__func__  # type: ignore[attr-defined]

    def counting(cls: type, text: str) -> object:
        count.append(1)
        return real(cls, text)

    monkeypatch.setattr(hostkeys._Index, "of", classmethod(counting))
    return count


def test_a_thousand_lookups_read_a_thousand_host_file_once(tmp_path: Path, reads: list[int]) -> None:
    key = ECDSAKey.generate()
    path = tmp_path / "known_hosts"
    path.write_text("".join(line(f"198.18.{i // 250}.{i % 250 + 1}", key) for i in range(1000)))
    known = KnownHosts(path)
    for i in range(1000):
        assert set(known.keys_for(f"198.18.{i // 250}.{i % 250 + 1}")) == {"ecdsa-sha2-nistp256"}
    assert known.keys_for("198.18.9.9") == {}
    assert len(reads) == 1


def test_pins_update_the_index_without_re_reading(tmp_path: Path, reads: list[int]) -> None:
    known = KnownHosts(tmp_path / "known_hosts")
    keys = [ECDSAKey.generate() for _ in range(3)]
    for i, key in enumerate(keys):
        known.verify(f"10.0.0.{i}", key, "accept-new")
    for i, key in enumerate(keys):
        known.verify(f"10.0.0.{i}", key, "strict")  # pinned, and found without a re-read
    assert len(reads) <= 1
    assert len(known.path.read_text().splitlines()) == 3


def test_another_writer_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    first, second = ECDSAKey.generate(), ECDSAKey.generate()
    path.write_text(line("a", first))
    known = KnownHosts(path)
    assert known.keys_for("b") == {}
    with path.open("a") as handle:  # say, ssh-keyscan >> known_hosts, or another acpcheck
        handle.write(line("b", second))
    assert known.keys_for("b")["ecdsa-sha2-nistp256"] == second
    path.unlink()
    assert known.keys_for("a") == {}


def test_hashed_names_damaged_lines_and_the_last_line_wins(tmp_path: Path) -> None:
    old, new, other = ECDSAKey.generate(), ECDSAKey.generate(), ECDSAKey.generate()
    path = tmp_path / "known_hosts"
    path.write_text(
        "# comment\n"
        + "garbage line\n"
        + "|1|not-base64|x ssh-ed25519 AAAA\n"
        + line("node", old)
        + line(hashed("node"), new)
        + line("[node]:2222", other)
    )
    known = KnownHosts(path)
    assert known.keys_for("node")["ecdsa-sha2-nistp256"] == new
    assert known.keys_for("[node]:2222")["ecdsa-sha2-nistp256"] == other
    assert known.keys_for("garbage") == {}
