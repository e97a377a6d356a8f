"""The Python client against a quantd with TLS, client certificates and bearer tokens
(docs/security.md): the token from token=, token_file= or the environment, the CA, mTLS, and the
server's UNAUTHENTICATED / PERMISSION_DENIED surfacing as QuantdError codes, never retried."""
import hashlib
import json
import subprocess
import time
import types

import grpc
import pytest

import quantd

from conftest import start_quantd, stop_quantd

TOKENS = {"submitter": "search-submitter-token", "viewer": "search-viewer-token",
          "other": "ads-submitter-token", "admin": "ops-admin-token"}


def _openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _make_pki(d):
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate CN=alice."""
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *new_key, "-days", "2", "-subj", "/CN=test-ca", "-addext",
             "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
             "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))
    for name, cn, ext in (("server", "localhost",
                           "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                           "extendedKeyUsage=serverAuth"),
                          ("alice", "alice", "extendedKeyUsage=clientAuth")):
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("req", *new_key, "-subj", f"/CN={cn}", "-keyout", str(d / f"{name}.key"),
                 "-out", str(d / f"{name}.csr"))
        _openssl("x509", "-req", "-days", "2", "-in", str(d / f"{name}.csr"), "-CA",
                 str(d / "ca.pem"), "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-out",
                 str(d / f"{name}.pem"), "-extfile", str(d / f"{name}.ext"))


@pytest.fixture(scope="module")
def secure_server(build_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("quantd-secure")
    pki = root / "pki"
    pki.mkdir()
    _make_pki(pki)

    def digest(token):
        return [hashlib.sha256(token.encode()).hexdigest()]

    (root / "identities.json").write_text(json.dumps({"principals": [
        {"name": "search-pipeline", "tenant": "search", "roles": ["submitter"],
         "token_sha256": digest(TOKENS["submitter"])},
        {"name": "search-dashboard", "tenant": "search", "roles": ["viewer"],
         "token_sha256": digest(TOKENS["viewer"])},
        {"name": "ads-pipeline", "tenant": "ads", "roles": ["submitter"],
         "token_sha256": digest(TOKENS["other"])},
        {"name": "ops", "tenant": "ops", "roles": ["admin"], "token_sha256": digest(TOKENS["admin"])},
        {"name": "alice", "tenant": "search", "roles": ["viewer"], "certificate_cn": "alice"},
    ]}))
    process, address, log = start_quantd(build_dir, root, [
        f"--tls-cert={pki / 'server.pem'}", f"--tls-key={pki / 'server.key'}",
        f"--tls-client-ca={pki / 'ca.pem'}", f"--tls-ca={pki / 'ca.pem'}",
        f"--identities={root / 'identities.json'}"])
    yield types.SimpleNamespace(address=address, root=root, ca=str(pki / "ca.pem"), pki=pki)
    stop_quantd(process, log)


def _paths(server, name):
    base = server.root / name
    (base / "model").mkdir(parents=True, exist_ok=True)
    (base / "model" / "config.json").write_text(json.dumps(
        {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_hidden_layers": 2,
         "vocab_size": 100, "intermediate_size": 128, "num_attention_heads": 4}))
    (base / "model" / "fake_engine.json").write_text(json.dumps({"steps": 2, "step_ms": 10}))
    (base / "calib.jsonl").write_text('{"text": "hello"}\n')
    return str(base / "model"), str(base / "out"), str(base / "calib.jsonl")


def _client(server, **kwargs):
    return quantd.Client(server.address, tls_ca=server.ca, retry_seconds=5, **kwargs)


def test_without_a_token_every_call_is_unauthenticated_at_once(secure_server, monkeypatch):
    monkeypatch.delenv("QUANTD_TOKEN", raising=False)
    monkeypatch.delenv("QUANTD_TOKEN_FILE", raising=False)
    with _client(secure_server) as client:
        start = time.monotonic()
        with pytest.raises(quantd.QuantdError) as error:
            list(client.list())
        assert error.value.code == grpc.StatusCode.UNAUTHENTICATED
        assert time.monotonic() - start < 2  # not retried like UNAVAILABLE
    with _client(secure_server, token="not-a-known-token") as client:
        with pytest.raises(quantd.QuantdError) as error:
            client.get("jobs/0")
        assert error.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_a_submitter_token_from_a_file_submits_and_follows_its_job(secure_server, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKENS["submitter"] + "\n# the first line is the token\n")
    with _client(secure_server, token_file=str(token_file)) as client:
        job = client.submit(*_paths(secure_server, "submitter"))
        assert job.tenant == "search" and job.owner == "search-pipeline"
        artifacts = client.wait(job, timeout=60)  # WatchJob (a stream) carries the token too
        assert artifacts and all(a.sha256 for a in artifacts)
        assert job.name in [j.name for j in client.list()]


def test_roles_and_tenants_are_permission_denied(secure_server):
    with _client(secure_server, token=TOKENS["submitter"]) as client:
        job = client.submit(*_paths(secure_server, "tenants"))
    with _client(secure_server, token=TOKENS["viewer"]) as viewer:
        assert viewer.get(job).tenant == "search"  # same tenant: visible
        with pytest.raises(quantd.QuantdError) as error:
            viewer.submit(*_paths(secure_server, "viewer-submit"))
        assert error.value.code == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(quantd.QuantdError) as error:
            viewer.cancel(job)
        assert error.value.code == grpc.StatusCode.PERMISSION_DENIED
    with _client(secure_server, token=TOKENS["other"]) as other:
        with pytest.raises(quantd.QuantdError) as error:
            other.get(job)
        assert error.value.code == grpc.StatusCode.PERMISSION_DENIED
        assert job.name not in [j.name for j in other.list()]
        with pytest.raises(quantd.QuantdError) as error:
            list(other.list(tenant="search"))
        assert error.value.code == grpc.StatusCode.PERMISSION_DENIED
    with _client(secure_server, token=TOKENS["admin"]) as admin:
        assert job.name in [j.name for j in admin.list(tenant="search")]
        assert all(j.tenant == "search" for j in admin.list(tenant="search"))


def test_the_token_and_ca_come_from_the_environment(secure_server, monkeypatch):
    monkeypatch.setenv("QUANTD_TOKEN", TOKENS["viewer"])
    monkeypatch.setenv("QUANTD_TLS_CA", secure_server.ca)
    with quantd.Client(secure_server.address, retry_seconds=5) as client:
        assert isinstance(client.workers(), list)


def test_a_client_certificate_is_a_credential(secure_server, monkeypatch):
    monkeypatch.delenv("QUANTD_TOKEN", raising=False)
    pki = secure_server.pki
    with _client(secure_server, tls_cert=str(pki / "alice.pem"),
                 tls_key=str(pki / "alice.key")) as alice:
        list(alice.list())  # viewer of tenant search: allowed
        with pytest.raises(quantd.QuantdError) as error:
            alice.submit(*_paths(secure_server, "alice"))
        assert error.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_bad_credential_options_are_clear_errors(secure_server, tmp_path):
    with pytest.raises(ValueError, match="token_file: .*missing"):
        quantd.Client(secure_server.address, token_file=str(tmp_path / "missing"))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        quantd.Client(secure_server.address, token_file=str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="give both"):
        quantd.Client(secure_server.address, tls_ca=secure_server.ca,
                      tls_cert=str(secure_server.pki / "alice.pem"))
